"""Zip safety: refuse an archive whose directory promises a bomb, a flood or an escape, before any entry is expanded.

The limits and the error class are the caller's: a dataset zip may hold thousands of images, a .keras
file a few entries, and each caller's typed error reaches its own page.
"""

import re
import stat

ABSOLUTE_PATH = re.compile(r"/|[A-Za-z]:")  # at the start of an entry's name: "/etc/...", "C:/..."


def check_zip_entries(
    entries,
    error_class,
    *,
    archive_name,
    contents,
    max_expanded_bytes,
    max_compression_ratio,
    ratio_check_min_bytes,
    max_entries=None,
    refuse_unsafe_entries=False,
):
    """Raise `error_class` unless a zip's entries (`ZipFile.infolist()`) stay within the limits; nothing is decompressed.

    Checks the number of entries, the expansion ratio of every entry larger than `ratio_check_min_bytes`
    and the total expanded size. With `refuse_unsafe_entries`, an entry that points outside the archive,
    a symbolic link or a password-protected entry is refused too (for archives that are unpacked into
    folders; a .keras file is only read entry by entry). `archive_name` ("the zip", "model.keras") and
    `contents` ("images") make the messages.
    """
    if max_entries is not None and len(entries) > max_entries:
        raise error_class(f"Refused: {archive_name} has {len(entries):,} entries; the limit is {max_entries:,}. "
                          f"Use fewer {contents}.")
    for entry in entries:
        if refuse_unsafe_entries:
            _refuse_unsafe_entry(entry, error_class, archive_name)
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > ratio_check_min_bytes and ratio > max_compression_ratio:
            raise error_class(f"Refused: the entry {entry.filename!r} in {archive_name} expands {ratio:.0f}x (the limit is "
                              f"{max_compression_ratio}x), like a zip bomb; {contents} do not compress that much.")
    total = sum(entry.file_size for entry in entries)
    if total > max_expanded_bytes:
        raise error_class(f"Refused: {archive_name} expands to {total / 2**20:.1f} MiB; the limit is "
                          f"{max_expanded_bytes / 2**20:.1f} MiB (a zip bomb, or more {contents} than this app takes).")


def _refuse_unsafe_entry(entry, error_class, archive_name):
    """Refuse an entry that would be written outside the target folder, a link, or an entry that cannot be read."""
    name = entry.filename.replace("\\", "/")
    if ABSOLUTE_PATH.match(name) or ".." in name.split("/"):
        raise error_class(f"Refused: the entry {entry.filename!r} in {archive_name} points outside the archive (absolute "
                          "path or '..'). Zip the folders themselves, e.g. `cd dataset && zip -r ../dataset.zip .`.")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise error_class(f"Refused: the entry {entry.filename!r} in {archive_name} is a symbolic link. Zip the real "
                          "files (`zip -r` without `-y`).")
    if entry.flag_bits & 0x1:
        raise error_class(f"Refused: the entry {entry.filename!r} in {archive_name} is password-protected. Zip it "
                          "without a password.")
