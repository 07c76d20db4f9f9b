"""``flows.echoes``: an expected echo is consumed once, only with every written value, and
only within its time; withdrawn writes and expired ones are never taken for an echo."""

from __future__ import annotations

from eventsync.flows.echoes import Echoes

LINK = {"Link__c": "https://x/ml_1", "Status__c": "Invited"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_echo_carrying_every_written_value_is_consumed_once() -> None:
    echoes = Echoes()
    echoes.expect("CampaignMember", {"00v1": LINK})
    assert echoes.consume("campaignmember", "00v1", {"Id": "00v1", **LINK})
    # The next message about the record is someone else's change.
    assert not echoes.consume("CampaignMember", "00v1", {"Id": "00v1", **LINK})


def test_a_message_without_the_written_fields_or_values_is_no_echo() -> None:
    echoes = Echoes()
    echoes.expect("CampaignMember", {"00v1": LINK})
    assert not echoes.consume("CampaignMember", "00v1", {"Id": "00v1"})  # fields not sent
    assert not echoes.consume("CampaignMember", "00v1", {**LINK, "Status__c": "Registered"})
    assert not echoes.consume("CampaignMember", "00v2", LINK)  # another record
    assert not echoes.consume("Lead", "00v1", LINK)  # another object
    assert echoes.consume("CampaignMember", "00v1", LINK)  # still expected


def test_withdrawn_and_expired_expectations_are_never_consumed_and_are_pruned() -> None:
    clock = Clock()
    echoes = Echoes(ttl=60.0, clock=clock)
    echoes.expect("CampaignMember", {"00v1": LINK, "00v2": LINK})
    echoes.withdraw("CampaignMember", ["00v2"])
    assert not echoes.consume("CampaignMember", "00v2", LINK)
    clock.now += 61
    assert not echoes.consume("CampaignMember", "00v1", LINK)
    echoes.expect("CampaignMember", {"00v3": LINK})
    assert len(echoes) == 1  # the expired one went when the next was added
