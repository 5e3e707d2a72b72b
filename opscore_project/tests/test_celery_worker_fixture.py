import pytest
from django.db import connection

from opscore_project.testing import current_database_url


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_starts_on_the_test_database(celery_worker):
    assert celery_worker.process.poll() is None
    assert connection.settings_dict["NAME"] in current_database_url()
    assert " ready." in celery_worker.log()
