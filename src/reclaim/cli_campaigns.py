"""``reclaim campaigns``: how asking employees went, per policy."""

from __future__ import annotations

from typing import Annotated

import typer

from reclaim.cli import ConfigOpt, JsonOpt, context, fail, out, print_json


def campaigns(
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Only this policy.", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per policy: asked, reminded, answers (keep / release), no response, could not
    ask, response rate and median time to answer."""
    from rich.table import Table

    from reclaim.services.campaign_report import CampaignStats, campaign_report

    ctx = context(config)
    if policy is not None:
        try:
            policy = ctx.settings.policy(policy).name
        except KeyError as exc:
            fail(str(exc.args[0]))
    found = {s.policy: s for s in campaign_report(ctx.engine, policy=policy)}
    for p in ctx.settings.policies:  # configured policies are listed even before any ask
        if (policy is None or p.name == policy) and p.name not in found:
            found[p.name] = CampaignStats(policy=p.name)
    rows = [found[name] for name in sorted(found, key=str.lower)]
    if as_json:
        print_json({"policies": [r.to_dict() for r in rows]})
        return
    table = Table(
        "policy",
        "sent",
        "reminded",
        "keep",
        "release",
        "no response",
        "could not ask",
        "awaiting",
        "response rate",
        "median to answer",
        "need it back",
        title="Campaigns",
        title_justify="left",
    )
    for r in rows:
        rate = "—" if r.response_rate is None else f"{r.response_rate:.0%}"
        median = "—" if r.median_hours_to_answer is None else _hours(r.median_hours_to_answer)
        table.add_row(
            r.policy,
            str(r.sent),
            str(r.reminded),
            str(r.answered_keep),
            str(r.answered_release),
            str(r.no_response),
            str(r.could_not_ask),
            str(r.awaiting),
            rate,
            median,
            str(r.restore_requests),
        )
    out.print(table)


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def register(app: typer.Typer) -> None:
    """Add ``campaigns`` to the ``reclaim`` command."""
    app.command("campaigns")(campaigns)
