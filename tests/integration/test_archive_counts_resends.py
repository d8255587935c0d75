"""The exactly-once checks can fail: the archive counts an instance sent twice as two stores."""

from tests.peers import storescu


def test_a_resent_instance_is_counted_twice(archive, study):
    storescu(archive.dicom_port, study.files[:1], called=archive.aet)
    storescu(archive.dicom_port, study.files[:1], called=archive.aet)
    assert len(archive.instances()) == 1
    assert archive.stores_received() == 2
