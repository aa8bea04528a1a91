// Segment's official Node library (@segment/analytics-node), pointed at the
// Banso gateway by its `host` alone: group, identify, track and page, sent
// as Segment batches, then flushed. Fails on any delivery error or any HTTP
// status but 200.
//
//   BANSO_GATEWAY_URL=… BANSO_WRITE_KEY=… SEGMENT_RUN=… node send.mjs
import { Analytics } from '@segment/analytics-node';

const { BANSO_GATEWAY_URL: host, BANSO_WRITE_KEY: writeKey, SEGMENT_RUN: run } = process.env;
if (!host || !writeKey || !run) {
  console.error('send.mjs: BANSO_GATEWAY_URL, BANSO_WRITE_KEY and SEGMENT_RUN are required');
  process.exit(2);
}

// The only change a product team makes: the host.
const analytics = new Analytics({ writeKey, host, flushInterval: 500, maxRetries: 3 });
const problems = [];
const statuses = [];
analytics.on('error', (e) => problems.push(`${e.code}: ${e.reason}`));
analytics.on('http_response', (r) => statuses.push(r.status));

const groupId = `seg-e2e-${run}-node`;
const userId = `node-user-${run}`;
analytics.group({
  userId,
  groupId,
  traits: { name: 'Node Co', industry: 'Software', employees: 42, plan: 'Pro', seats: 17 },
});
analytics.identify({
  userId,
  traits: { firstName: 'Nora', lastName: 'Node', email: `nora-${run}@node.example`, title: 'Engineer' },
});
analytics.track({ userId, event: 'Report Exported', properties: { format: 'csv' } });
analytics.track({ userId, event: 'Report Exported', properties: { format: 'pdf', quantity: 2 } });
analytics.page({ userId, name: 'Pricing', properties: { path: '/pricing' } });

await analytics.closeAndFlush({ timeout: 20000 });

if (statuses.length === 0) problems.push('no request reached the gateway');
for (const s of statuses) if (s !== 200) problems.push(`HTTP ${s}`);
if (problems.length) {
  console.error(`send.mjs: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`send.mjs: ${statuses.length} request(s), all 200`);
