import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authn", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Tokens created before scopes existed could do everything an operator does, and scrape /metrics.
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.CharField(default="operator metrics", max_length=100),
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="scopes",
            field=models.CharField(
                default="operator", help_text="Space-separated: agent, operator, metrics, admin.", max_length=100
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="agent_id",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Optional: an agent token may only report and act for this agent.",
                max_length=255,
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, help_text="Optional: stops working after this.", null=True),
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="user",
            field=models.ForeignKey(
                blank=True,
                help_text="Optional owner: the token stops working when this user is deactivated.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
