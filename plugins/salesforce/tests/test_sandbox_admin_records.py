"""The admin API's record listing: every record in creation order, or only the newer ones."""

from __future__ import annotations

import pytest
import requests


def test_skip_lists_only_the_records_created_after(conn, admin, unique):
    before = len(admin.get("/records/Lead"))
    for n in range(3):
        conn.sf.Lead.create({"LastName": f"L{n}", "Company": "C", "Email": f"{n}@{unique}.test"})
    newer = admin.get(f"/records/Lead?skip={before}")
    assert [r["Email"] for r in newer] == [f"{n}@{unique}.test" for n in range(3)]
    assert admin.get(f"/records/Lead?skip={before + 3}") == []
    assert admin.get("/records/Lead")[before:] == newer


@pytest.mark.parametrize("skip", ["-1", "two", ""])
def test_a_bad_skip_is_a_clear_400(admin, skip):
    with pytest.raises(requests.HTTPError) as caught:
        admin.get(f"/records/Lead?skip={skip}")
    assert caught.value.response.status_code == 400
    assert caught.value.response.json() == {"error": "skip must be a whole number of records"}
