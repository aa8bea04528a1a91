"""Segment's official Python library (segment-analytics-python), pointed at
the Banso gateway by its `host` alone, gzip on: group, identify, track and
screen, then flush. Fails on any upload error.

    BANSO_GATEWAY_URL=… BANSO_WRITE_KEY=… SEGMENT_RUN=… python send.py
"""

from __future__ import annotations

import os
import sys

import segment.analytics as analytics


def main() -> int:
    run = os.environ["SEGMENT_RUN"]
    errors: list[str] = []
    # The only changes a product team makes: the host (gzip is the library's own option).
    analytics.write_key = os.environ["BANSO_WRITE_KEY"]
    analytics.host = os.environ["BANSO_GATEWAY_URL"]
    analytics.gzip = True
    analytics.max_retries = 3
    analytics.on_error = lambda error, batch: errors.append(f"{error} ({len(batch)} messages)")

    group_id = f"seg-e2e-{run}-python"
    user_id = f"python-user-{run}"
    analytics.group(user_id, group_id, {"name": "Python KK", "industry": "Retail", "employees": 7, "plan": "Starter"})
    analytics.identify(user_id, {"name": "Pia Python", "email": f"pia-{run}@python.example", "title": "Analyst"})
    analytics.track(user_id, "Report Exported", {"format": "xlsx"})
    analytics.track(user_id, "Report Exported", {"format": "csv"})
    analytics.screen(user_id, name="Home")
    analytics.flush()
    analytics.shutdown()

    if errors:
        print("send.py: " + "; ".join(errors), file=sys.stderr)
        return 1
    print("send.py: flushed without errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
