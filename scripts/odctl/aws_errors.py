"""The operator's AWS calls: what goes wrong before or at AWS, as one line (no region, no credentials, refused,
unreachable), for every command that talks to AWS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from odshared.core.errors import OdError


class AwsCallError(OdError):
    """An AWS call could not be made or was refused."""


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """What goes wrong before or at AWS, as one line: no region, no credentials, refused, unreachable."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        yield
    except NoRegionError:
        raise AwsCallError(
            f"{what}: no AWS region; set AWS_DEFAULT_REGION or a profile with a region (AWS_PROFILE)"
        ) from None
    except NoCredentialsError:
        raise AwsCallError(f"{what}: no AWS credentials; configure a profile (aws configure) or AWS_PROFILE") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsCallError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise AwsCallError(f"{what}: {exc}") from None
