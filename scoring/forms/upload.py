"""Uploading a snapshot file from the browser."""


from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from scoring.importing import SnapshotError, parse_snapshot_json, validate_snapshot


class SnapshotUploadForm(forms.Form):
    file = forms.FileField(
        label="Snapshot file (JSON)",
        help_text="The snapshot format of the API: agent, taken_at, system, identity, journal, conversation.",
    )

    def __init__(self, *args, agent, **kwargs):
        self.agent = agent
        super().__init__(*args, **kwargs)

    def clean_file(self):
        # Django has spilled a file past FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to
        # a temporary file as it arrived; its size is known before it is read.
        upload = self.cleaned_data["file"]
        limit = settings.SNAPSHOT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"The file is {upload.size:,} bytes, larger than the server's limit of "
                f"{limit:,} bytes (SNAPSHOT_MAX_BYTES)."
            )
        try:
            self.snapshot_data = parse_snapshot_json(upload.read())
            validate_snapshot(self.snapshot_data, agent=self.agent)
        except SnapshotError as e:
            raise ValidationError(e.errors) from None
        return upload
