"""Where the crossings' evidence lives in the cloud, and for how long (issue 36)."""

from __future__ import annotations

from infra.edge import EVIDENCE_RETENTION_DAYS
from odedge.evidence import PREFIX
from odshared.fleet.ledger import EVIDENCE_PREFIX


def test_the_cloud_copies_of_evidence_expire_and_the_device_writes_where_the_rule_looks(synthesized):
    """The data bucket expires ``evidence/`` after the stated days; the device uploads under that same prefix (its
    own constant), and its policy allows only that prefix under its own thing name."""
    _, template = synthesized
    assert PREFIX == EVIDENCE_PREFIX
    buckets = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    rules = [rule for b in buckets for rule in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])]
    (evidence,) = [r for r in rules if r.get("Id") == "Evidence"]
    assert evidence == {
        "Id": "Evidence",
        "Prefix": f"{PREFIX}/",
        "ExpirationInDays": EVIDENCE_RETENTION_DAYS,
        "Status": "Enabled",
    }
