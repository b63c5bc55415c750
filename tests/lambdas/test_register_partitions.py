"""The ledger's partition registration (odshared.fleet.partitions) against moto's Glue and S3: each object's key
names its partition, a partition Glue holds already is left as it is, a key that names none fails loudly (Lambda
then retries it, and the dead-letter queue keeps it); a partition is dropped once its last object has expired."""

from __future__ import annotations

import pytest

from odshared.fleet.ledger import COUNTS, HEALTH
from odshared.fleet.partitions import UnknownObject, apply_event, keys_of_event, partition_of, register

DATABASE = "fleet"


def test_a_key_names_its_tables_hour_and_device():
    found = partition_of(f"{COUNTS.prefix}2026/12/05/09/camera-07/Stream-1-2026-12-05-09-00-00-abc")
    assert (found.table, found.dt, found.device) == ("counts", "2026/12/05/09", "camera-07")
    assert found.folder == f"{COUNTS.prefix}2026/12/05/09/camera-07/"
    assert partition_of(f"{HEALTH.prefix}2026/12/05/09/a:b_c-d/x").device == "a:b_c-d"


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("fleet/parquet/other/2026/12/05/09/cam/x", "under no converted table's folder"),
        (f"{COUNTS.prefix}2026/12/05/cam/x", "no arrival hour"),
        (f"{COUNTS.prefix}2026/12/05/09/x", "no device folder"),
        (f"{COUNTS.prefix}2026/12/05/09/cam/", "no device folder"),
    ],
)
def test_a_key_that_names_no_partition_is_refused_with_the_key(key, why):
    with pytest.raises(UnknownObject, match=why) as refused:
        partition_of(key)
    assert key in str(refused.value)


def test_an_event_that_is_not_s3s_object_created_or_deleted_is_refused():
    detail = {"bucket": {"name": "b"}, "object": {"key": "fleet/parquet/counts/2026/12/05/09/a%3Ab/x"}}
    for event in ({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}}, {"detail": detail}):
        with pytest.raises(UnknownObject, match="not an S3 Object Created or Object Deleted event"):
            keys_of_event(event)
    event = {"detail-type": "Object Deleted", "detail": detail}
    assert keys_of_event(event) == ("Object Deleted", "b", ["fleet/parquet/counts/2026/12/05/09/a:b/x"])


@pytest.fixture
def glue(aws):  # a moto server: the tests that take it are integration tests
    import boto3

    client = boto3.client("glue")
    client.create_database(DatabaseInput={"Name": DATABASE})
    for table in (COUNTS, HEALTH):
        client.create_table(
            DatabaseName=DATABASE,
            TableInput={
                "Name": table.name,
                "PartitionKeys": [{"Name": k, "Type": "string"} for k in table.partition_keys],
                "StorageDescriptor": {
                    "Columns": [{"Name": "thing", "Type": "string"}],
                    "Location": f"s3://data/{table.prefix}",
                    "SerdeInfo": {
                        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    },
                },
            },
        )
    return client


@pytest.mark.integration
def test_each_partition_is_registered_once_at_its_folder_with_its_tables_storage(glue):
    keys = [
        f"{COUNTS.prefix}2026/12/05/09/cam-1/a",
        f"{COUNTS.prefix}2026/12/05/09/cam-1/b",  # the same partition
        f"{COUNTS.prefix}2026/12/05/10/cam-1/a",
        f"{HEALTH.prefix}2026/12/05/09/cam-2/a",
    ]
    created = register(glue, DATABASE, "data", keys)
    assert sorted((p.table, p.dt, p.device) for p in created) == [
        ("counts", "2026/12/05/09", "cam-1"),
        ("counts", "2026/12/05/10", "cam-1"),
        ("health", "2026/12/05/09", "cam-2"),
    ]
    (partition, _) = sorted(
        glue.get_partitions(DatabaseName=DATABASE, TableName="counts")["Partitions"], key=lambda p: p["Values"]
    )
    assert partition["Values"] == ["2026/12/05/09", "cam-1"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://data/{COUNTS.prefix}2026/12/05/09/cam-1/"
    assert partition["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert register(glue, DATABASE, "data", keys) == []  # again (a redelivered event, a replay): nothing new
    assert len(glue.get_partitions(DatabaseName=DATABASE, TableName="counts")["Partitions"]) == 2


@pytest.mark.integration
def test_a_table_glue_does_not_hold_fails_the_registration_loudly(glue):
    glue.delete_table(DatabaseName=DATABASE, Name="health")
    with pytest.raises(Exception, match="health"):
        register(glue, DATABASE, "data", [f"{HEALTH.prefix}2026/12/05/09/cam-2/a"])


@pytest.mark.integration
def test_a_partition_is_dropped_once_its_last_object_has_expired(glue):
    """Deleted one by one (as the lifecycle rule expires them): the partition stays while an object is left."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    keys = [f"{COUNTS.prefix}2026/12/05/09/cam-1/{leaf}" for leaf in ("a", "b")]
    for key in keys:
        s3.put_object(Bucket="data", Key=key, Body=b"parquet")
    register(glue, DATABASE, "data", keys)

    def deleted(key: str) -> dict:
        s3.delete_object(Bucket="data", Key=key)
        return apply_event(
            {"detail-type": "Object Deleted", "detail": {"bucket": {"name": "data"}, "object": {"key": key}}},
            glue,
            s3,
            DATABASE,
        )

    assert deleted(keys[0]) == {"dropped": []}
    assert len(glue.get_partitions(DatabaseName=DATABASE, TableName="counts")["Partitions"]) == 1
    assert deleted(keys[1]) == {"dropped": [f"{COUNTS.prefix}2026/12/05/09/cam-1/"]}
    assert glue.get_partitions(DatabaseName=DATABASE, TableName="counts")["Partitions"] == []
    assert deleted(keys[1]) == {"dropped": []}  # redelivered: nothing left to drop
    assert deleted(f"{COUNTS.prefix}2026/12/05/09/old-object") == {"dropped": []}  # no partition named: none dropped
