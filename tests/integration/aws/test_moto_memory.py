"""moto's server as the tests and the replay benchmark run it keeps no copy of a table per transaction."""

from __future__ import annotations

from moto.core.base_backend import model_data

from tests.support import aws


def _tracked_items() -> int:
    return len(model_data["dynamodb"]["Item"].instances_tracked)


def test_a_transaction_leaves_no_tracked_copy_of_the_table_behind(request):
    endpoint = aws.moto_endpoint(request)
    ddb = aws.client("dynamodb", endpoint)
    table = aws.create_table(ddb, "RegistryTable", aws.unique("tracked"))
    for i in range(30):
        ddb.put_item(TableName=table, Item={"pk": {"S": "MODEL#m"}, "sk": {"S": f"ITEM#{i:03d}"}})
    before = _tracked_items()
    for i in range(5):
        put = {"TableName": table, "Item": {"pk": {"S": "MODEL#m"}, "sk": {"S": f"TX#{i}"}}}
        ddb.transact_write_items(TransactItems=[{"Put": put}])
    # moto deep-copies the 30-item table as a backup in each of the 5 transactions (150 copies);
    # the server forgets them after every request, so the tracker holds at most one request's objects
    assert _tracked_items() - before < 30
    assert len(ddb.scan(TableName=table)["Items"]) == 35
