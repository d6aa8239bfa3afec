"""Passwords for HTTP basic authentication, checked so that guessing them costs
the guesser, not everybody else.

- PBKDF2 runs in :data:`HASH_THREADS` threads of its own, never on the event
  loop; a check waits at most :data:`SLOT_WAIT` s for a thread, then gets 503
  with Retry-After.
- An unknown user name costs the same hash as a known one (against a dummy
  hash of the file's usual cost): the time of a refusal does not tell names.
- A verified user name and password are remembered for :data:`CACHE_SECONDS`
  (by an HMAC digest, never the password itself): a client's next requests pay
  no hash.
- After :data:`FREE_FAILURES` wrong passwords from one client address, or for
  one user name, each further failure doubles a wait (from
  :data:`FIRST_WAIT` s up to :data:`LONGEST_WAIT` s) during which that address
  or name gets 429 with Retry-After without any hashing, answered only after
  up to :data:`SLOT_WAIT` s (a client in a loop is slowed down, at no cost).
  Remembered credentials still pass.

All of it is per server process (``--workers`` each have their own).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiouws.config import ConfigError
from aiouws.errors import CredentialsBusy, TooManyFailures, Unauthorized

__all__ = [
    "Backoff",
    "PasswordChecker",
    "hash_password",
    "load_groups",
    "load_passwords",
    "verify_password",
]

ITERATIONS = 200_000
#: Threads hashing passwords (PBKDF2 releases the GIL: the loop runs on).
HASH_THREADS = 2
#: Seconds a check waits for a hashing thread (then 503), and the longest a
#: refusal during a back-off is held before it is answered.
SLOT_WAIT = 1.0
CACHE_SIZE = 4096
CACHE_SECONDS = 300.0
FREE_FAILURES = 5
FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0
#: A key's failures are forgotten after this long without one.
FORGET_SECONDS = 600.0
#: Client addresses and user names whose failures are remembered (each).
TRACKED = 10_000
#: Longest user name a back-off is kept for by name (longer ones share one).
_NAME = 128


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """A ``pbkdf2_sha256$iterations$salt$hash`` line for the password file."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` line)."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)


def load_passwords(
    path: Path, owner_pattern: Callable[[str], object]
) -> dict[str, str]:
    """Read ``user:hash`` lines (``#`` comments allowed); user names must match
    ``owner_pattern``. A line may end in ``:group1,group2`` (the user's groups,
    see :func:`load_groups`), which is not part of the hash."""
    return {
        user: stored.partition(":")[0]
        for user, stored in _read_lines(path, owner_pattern).items()
    }


#: A group name in the password file (or a trusted proxy's groups header).
GROUP_NAME = re.compile(r"^[\w.@+-]{1,128}$")


def load_groups(
    path: Path, owner_pattern: Callable[[str], object]
) -> dict[str, frozenset[str]]:
    """The groups of each user of ``user:hash:group1,group2`` lines.

    Raises
    ------
    ConfigError
        A group name that is not letters, digits and ``.@+-_`` (128 at most).
    """
    table: dict[str, frozenset[str]] = {}
    for user, stored in _read_lines(path, owner_pattern).items():
        listed = stored.partition(":")[2]
        groups = frozenset(g.strip() for g in listed.split(",") if g.strip())
        bad = sorted(g for g in groups if not GROUP_NAME.match(g))
        if bad:
            raise ConfigError(f"{path}: user {user}: bad group name {bad[0]!r}")
        table[user] = groups
    return table


def _read_lines(path: Path, owner_pattern: Callable[[str], object]) -> dict[str, str]:
    table: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not owner_pattern(user):
            raise ConfigError(f"{path}:{number}: expected user:hash")
        table[user] = stored
    return table


def _dummy_hash(passwords: Mapping[str, str]) -> str:
    """A hash no password matches, at the file's most common cost."""
    counts = collections.Counter(
        int(parts[1])
        for parts in (stored.split("$") for stored in passwords.values())
        if len(parts) == 4 and parts[0] == "pbkdf2_sha256" and parts[1].isdigit()
    )
    iterations = counts.most_common(1)[0][0] if counts else ITERATIONS
    return f"pbkdf2_sha256${iterations}${secrets.token_hex(16)}${'0' * 64}"


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    until: float = 0.0


class Backoff:
    """Failures per key (a client address, a user name), bounded in memory: the
    least recently failed keys are forgotten first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: collections.OrderedDict[str, _Failures] = collections.OrderedDict()

    def wait(self, key: str) -> float:
        """Seconds ``key`` must still wait (0: it may try)."""
        entry = self._keys.get(key)
        return 0.0 if entry is None else max(0.0, entry.until - self._clock())

    def failed(self, key: str) -> None:
        now = self._clock()
        entry = self._keys.pop(key, None)
        if entry is None or now - entry.last > FORGET_SECONDS:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        beyond = entry.count - FREE_FAILURES
        if beyond > 0:
            entry.until = now + min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(beyond - 1, 30))
        self._keys[key] = entry
        while len(self._keys) > TRACKED:
            self._keys.popitem(last=False)

    def forget(self, key: str) -> None:
        self._keys.pop(key, None)


class PasswordChecker:
    """Checks user names and passwords against one password table."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = dict(passwords)
        self._dummy = _dummy_hash(self._passwords)
        self._secret = secrets.token_bytes(32)
        self._verified: collections.OrderedDict[bytes, tuple[str, float]] = (
            collections.OrderedDict()
        )
        self._addresses = Backoff()
        self._names = Backoff()
        self._slots = asyncio.Semaphore(HASH_THREADS)
        # Idle threads end when the checker (and its application) is collected.
        self._threads = ThreadPoolExecutor(HASH_THREADS, "aiouws-passwords")

    def _digest(self, user: str, password: str) -> bytes:
        message = f"{len(user)}:{user}:{password}".encode(errors="surrogatepass")
        return hmac.digest(self._secret, message, "sha256")

    async def check(self, user: str, password: str, address: str) -> str:
        """``user`` if ``password`` is theirs.

        Raises
        ------
        Unauthorized
            Unknown user or wrong password (the same time for both).
        TooManyFailures
            ``address`` or ``user`` failed too often lately (no hash done).
        CredentialsBusy
            Too many checks are under way.
        """
        digest = self._digest(user, password)
        now = time.monotonic()
        remembered = self._verified.get(digest)
        if remembered is not None and remembered[1] > now:
            self._verified.move_to_end(digest)
            return remembered[0]
        name = user if len(user) <= _NAME else ""
        wait = max(self._addresses.wait(address), self._names.wait(name))
        if wait > 0:
            await asyncio.sleep(min(wait, SLOT_WAIT))
            raise TooManyFailures(
                "too many wrong passwords; try again later",
                max(1, math.ceil(wait - SLOT_WAIT)),
            )
        stored = self._passwords.get(user)
        try:
            async with asyncio.timeout(SLOT_WAIT):
                await self._slots.acquire()
        except TimeoutError:
            raise CredentialsBusy(
                "too many logins at once; try again shortly"
            ) from None
        try:
            right = await asyncio.get_running_loop().run_in_executor(
                self._threads, verify_password, password, stored or self._dummy
            )
        finally:
            self._slots.release()
        if not right or stored is None:
            self._addresses.failed(address)
            self._names.failed(name)
            raise Unauthorized("wrong user name or password")
        self._names.forget(name)
        self._verified[digest] = (user, time.monotonic() + CACHE_SECONDS)
        while len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return user
