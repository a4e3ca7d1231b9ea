"""``streamsense learner sentiment``: online learning from ``labels.text``."""

from __future__ import annotations

import typer

app = typer.Typer(help="Online learners: improve a model from a labeled stream, roll it out.")


@app.command()
def sentiment(
    model: str = typer.Option(None, "--model", help="model name (default: sentiment-tweets)"),
    margin: float = typer.Option(None, help="accuracy gain needed to promote (0.02 = 2 points)"),
    min_samples: int = typer.Option(None, help="paired labels needed before a promotion"),
    min_interval_s: float = typer.Option(None, help="seconds between promotions, at least"),
    learning_rate: float = typer.Option(None, help="challenger's Adam learning rate"),
) -> None:
    """Score each label with champion and challenger, train the challenger, promote it when it
    is better on the same recent labels; SIGTERM drains and commits."""
    from streamsense.services.cli.entry import run_service, settings_from
    from streamsense.services.learner.app import build_learner
    from streamsense.services.learner.settings import LearnerSettings

    options = {
        "learner_model": ("--model", model),
        "learner_margin": ("--margin", margin),
        "learner_min_samples": ("--min-samples", min_samples),
        "learner_min_interval_s": ("--min-interval-s", min_interval_s),
        "learner_learning_rate": ("--learning-rate", learning_rate),
    }
    settings = settings_from(
        LearnerSettings, options, learner_task="sentiment", service_name="learner-sentiment"
    )
    run_service(settings, lambda s: build_learner(s)[0])
