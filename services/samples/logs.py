"""``sample.log``: application log lines that carry sentiment (customer chat, reviews, payments,
deploys), deterministic for a seed; ``labels.jsonl``: the same lines as ``LabeledText``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from streamsense.schemas.text import LabeledText, SentimentLabel

START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

#: (level, component, message template) per sentiment; {n} {user} {ms} {pct} are filled in.
TEMPLATES: dict[SentimentLabel, list[tuple[str, str, str]]] = {
    "positive": [
        ("INFO", "checkout", "payment succeeded, customer very happy"),
        ("INFO", "reviews", "5 stars: absolutely love the new dashboard, great work"),
        ("INFO", "support-chat", "user {user}: thanks a lot, that fixed it, you are awesome"),
        ("INFO", "deploy", "release finished smoothly in {ms} ms, everything green, nice"),
        ("INFO", "reviews", "fantastic support, quick and friendly, highly recommended"),
        ("INFO", "support-chat", "user {user}: wow, the new search is brilliant and fast"),
        ("INFO", "checkout", "order {n} delivered early, customer delighted"),
        ("INFO", "backup", "backup completed successfully, great job team"),
    ],
    "negative": [
        ("ERROR", "checkout", "payment failed: card declined, customer furious"),
        ("ERROR", "reviews", "1 star: terrible experience, the app keeps crashing"),
        ("WARN", "support-chat", "user {user}: this is useless, I want a refund now"),
        ("ERROR", "deploy", "release failed and rolled back, awful night for on-call"),
        ("WARN", "disk", "disk at {pct}% on /var, backups failing again, very bad"),
        ("ERROR", "support-chat", "user {user}: worst service ever, nobody answers, so angry"),
        ("WARN", "checkout", "order {n} lost in transit, customer is upset and disappointed"),
        ("ERROR", "auth", "login broken for user {user}, horrible, nothing works"),
    ],
    "neutral": [
        ("INFO", "auth", "user {user} logged in"),
        ("INFO", "cache", "cache refreshed in {ms} ms"),
        ("INFO", "search", "query executed: {n} results"),
        ("INFO", "scheduler", "job nightly-report started"),
        ("DEBUG", "http", "GET /api/orders/{n} 200 in {ms} ms"),
        ("INFO", "checkout", "order {n} created"),
        ("INFO", "support-chat", "user {user}: what are your opening hours?"),
        ("INFO", "deploy", "config reloaded, {n} keys"),
    ],
}
#: neutral lines dominate real logs
WEIGHTS: dict[SentimentLabel, float] = {"positive": 0.3, "negative": 0.3, "neutral": 0.4}


@dataclass(frozen=True)
class SampleLine:
    ts: datetime
    line: str
    label: SentimentLabel


def lines(count: int = 300, seed: int = 7) -> list[SampleLine]:
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    labels = list(WEIGHTS)
    out: list[SampleLine] = []
    ts = START
    for _ in range(count):
        ts += timedelta(milliseconds=rng.randint(200, 5000))
        label = rng.choices(labels, weights=[WEIGHTS[x] for x in labels])[0]
        level, component, template = rng.choice(TEMPLATES[label])
        message = template.format(n=rng.randint(100, 99999), user=rng.randint(1000, 9999),
                                  ms=rng.randint(3, 900), pct=rng.randint(85, 99))  # fmt: skip
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
        out.append(SampleLine(ts, f"{stamp} {level} {component}: {message}", label))
    return out


def make_log(path: Path, count: int = 300, seed: int = 7) -> list[SampleLine]:
    sample = lines(count, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(s.line + "\n" for s in sample), encoding="utf-8")
    return sample


def make_labels(path: Path, sample: list[SampleLine], source_id: str = "sample.log") -> None:
    """One ``LabeledText`` JSON per line, ready for ``labels.text``."""
    with open(path, "wb") as fh:
        for s in sample:
            msg = LabeledText(source_id=source_id, text=s.line, label=s.label,
                              ts_ns=int(s.ts.timestamp()) * 1_000_000_000
                              + s.ts.microsecond * 1000)  # fmt: skip
            fh.write(orjson.dumps(msg.to_json_dict()) + b"\n")
