"""One interface over local paths and s3:// URIs, so every command and Lambda treats both alike.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``), which is how tests and the demo point
every S3 call at a moto server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from odshared.core.errors import StorageError

_client_lock = threading.Lock()
_clients: dict[tuple[str | None, str | None, str | None], Any] = {}


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty."""
    if not is_s3(uri):
        raise StorageError(f"{uri}: not an s3:// URI")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri}: the URI names no bucket")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join path parts under a local folder or an S3 prefix."""
    if is_s3(base):
        out = base.rstrip("/")
        for part in parts:
            out += "/" + part.strip("/")
        return out
    return str(Path(base, *parts))


def basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] if is_s3(uri) else Path(uri).name


def relocated(ref: str, folder: str | None) -> str:
    """``ref`` itself, or its file name under ``folder`` (labels made in S3, their images copied elsewhere)."""
    return join(folder, basename(ref)) if folder else ref


def parent(uri: str) -> str:
    if is_s3(uri):
        return uri.rstrip("/").rsplit("/", 1)[0]
    return str(Path(uri).parent)


def s3_client() -> Any:
    """A shared S3 client (thread-safe) with adaptive retries; rebuilt when the endpoint settings change."""
    key = (
        os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        os.environ.get("AWS_ACCESS_KEY_ID"),
    )
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32)
            client = boto3.client("s3", config=config)
            _clients[key] = client
        return client


def _storage_error(uri: str, exc: Exception) -> StorageError:
    """Turn a botocore error into a message that says what to fix."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return StorageError(f"{uri}: no AWS credentials found (configure a profile or set AWS_PROFILE)")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        bucket = split_s3(uri)[0] if is_s3(uri) else uri
        if code in ("NoSuchBucket",):
            return StorageError(f"{uri}: bucket {bucket!r} does not exist")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return StorageError(f"{uri}: access denied (check the bucket policy and your credentials)")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
            return StorageError(f"{uri}: access denied: the AWS credentials were refused ({code})")
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"{uri}: no such object")
        return StorageError(f"{uri}: S3 error {code}: {exc}")
    return StorageError(f"{uri}: {exc}")


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            body: bytes = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError as exc:
        raise StorageError(f"{uri}: no such file") from exc
    except OSError as exc:
        raise StorageError(f"{uri}: {exc.strerror}") from exc


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a crash never leaves a half-written output behind


def create_only(uri: str, data: bytes) -> bool:
    """Write ``uri`` only where nothing is there yet (S3's If-None-Match: *): False when it already was, so two
    callers racing for one name see exactly one True."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise _storage_error(uri, exc) from exc
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as handle:
            handle.write(data)
        return True
    except FileExistsError:
        return False


def delete(uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        return
    Path(uri).unlink(missing_ok=True)


def write_text(uri: str, text: str, content_type: str | None = None) -> None:
    write_bytes(uri, text.encode("utf-8"), content_type)


def iter_lines(uri: str) -> Iterator[str]:
    """Stream the lines of a text file without loading it whole; line endings are stripped."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        for raw in body.iter_lines(keepends=False):
            yield raw.decode("utf-8", errors="replace")
        return
    try:
        handle = open(uri, encoding="utf-8", errors="replace")  # noqa: SIM115 - generator owns it
    except FileNotFoundError as exc:
        raise StorageError(f"{uri}: no such file") from exc
    with handle:
        for line in handle:
            yield line.rstrip("\r\n")


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError) and str(exc.response["Error"].get("Code")) in ("404", "NoSuchKey"):
                return False
            raise _storage_error(uri, exc) from exc
    return Path(uri).exists()


def list_files(uri: str, suffixes: Iterable[str] | None = None) -> Iterator[str]:
    """Stream the files under a folder or S3 prefix, recursively, in lexicographic order.

    S3 pages are yielded as they arrive (ListObjectsV2 returns keys sorted), so memory stays flat;
    a local folder is read one directory at a time.
    """
    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        paginator = s3_client().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue
                    if wanted is None or key.lower().endswith(wanted):
                        yield f"s3://{bucket}/{key}"
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        return
    root = Path(uri)
    if not root.is_dir():
        raise StorageError(f"{uri}: no such folder")
    yield from _walk_sorted(str(root), wanted)


def _walk_sorted(folder: str, wanted: tuple[str, ...] | None) -> Iterator[str]:
    # Only names are kept (no DirEntry objects): about 70 bytes per file, so a million frames fit in ~80 MB.
    dirs: set[str] = set()
    names: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                dirs.add(entry.name)
                names.append(entry.name)
            elif wanted is None or entry.name.lower().endswith(wanted):
                names.append(entry.name)
    names.sort()
    prefix = folder.rstrip(os.sep) + os.sep
    for name in names:
        if name in dirs:
            yield from _walk_sorted(prefix + name, wanted)
        else:
            yield prefix + name


def list_names(uri: str) -> set[str]:
    """The relative names already present under a folder or prefix (used to resume interrupted work)."""
    base = uri.rstrip("/") + "/"
    names: set[str] = set()
    if not is_s3(uri) and not Path(uri).is_dir():
        return names
    for item in list_files(uri):
        names.add(item[len(base) :] if item.startswith(base) else basename(item))
    return names


def upload_file(local_path: str | Path, uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().upload_file(str(local_path), bucket, key)
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        return
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_path, uri)


def download_file(uri: str, local_path: str | Path) -> Path:
    local = Path(local_path)
    local.parent.mkdir(parents=True, exist_ok=True)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().download_file(bucket, key, str(local))
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
        return local
    try:
        shutil.copyfile(uri, local)
    except FileNotFoundError as exc:
        raise StorageError(f"{uri}: no such file") from exc
    return local


def check_bucket(uri: str) -> None:
    """Fail early, with a clear message, when an S3 destination's bucket is missing or denied."""
    if not is_s3(uri):
        return
    bucket, _ = split_s3(uri)
    try:
        s3_client().head_bucket(Bucket=bucket)
    except Exception as exc:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and str(exc.response["Error"].get("Code")) in ("404", "NoSuchBucket"):
            raise StorageError(f"{uri}: bucket {bucket!r} does not exist") from exc
        raise _storage_error(uri, exc) from exc


@contextmanager
def open_writer(uri: str) -> Iterator[Any]:
    """A text handle whose content appears at ``uri`` only when the block succeeds (streamed via a temp file)."""
    if is_s3(uri):
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".part", delete=False) as handle:
            tmp = handle.name
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                yield handle
            upload_file(tmp, uri)
        finally:
            os.unlink(tmp)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".part")
    try:
        with open(tmp_path, "w", encoding="utf-8") as handle:
            yield handle
        tmp_path.replace(path)
    finally:
        tmp_path.unlink(missing_ok=True)


def parallel_map(func: Any, items: Iterable[Any], workers: int = 8) -> Iterator[Any]:
    """Run ``func`` over ``items`` in threads (I/O-bound work), yielding results in input order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(func, item) for item in items]
        for future in futures:
            yield future.result()
