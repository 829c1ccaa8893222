"""How a transaction's statements reach the database (``StatementSender``, the base of ``SqlTransaction``).

SQLite runs each statement at once. On PostgreSQL the statements whose answer nobody waits for (savepoints,
the access and notification rows, the audit rows, the head's update) wait in a queue and go with the next
statement that needs an answer, or with COMMIT, in one round trip (psycopg's pipeline mode); reads wanted
later can be queued ahead of time the same way (``_ahead_of_time``, ``_fetch``), and the same read of many keys
queued together goes as one statement (``_gathered``: a batch's searches read every child's row in one SELECT).
Queued rows go as few ``executemany`` calls as their order allows (``_send``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from .rows import _APPENDED, _Gathered, _Sql

_IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open on the connection (psycopg's ``TransactionStatus.IDLE``)


class StatementSender:
    def __init__(self, conn: Connection, *, begin: bool = False) -> None:
        """``begin``: the connection is in autocommit (PostgreSQL) and the first round trip sends BEGIN."""
        self._conn = conn
        self._dialect = conn.dialect.name
        self._driver: Any = None
        self._queued: list[tuple[str, dict[str, Any] | tuple[Any, ...]]] | None = (
            [] if self._dialect == "postgresql" else None)
        self._flushes = 0  # how many times the queue has gone to the database
        # Reads queued ahead (``prefetch_*``, the head's lock): the position of each in the queue, by name, and for
        # a gathered read the columns and values that pick its rows; after the flush that sends them, their rows.
        self._ahead: dict[Any, int] = {}
        self._keyed: dict[Any, tuple[tuple[int, ...], tuple[Any, ...]]] = {}
        self._fetched: dict[Any, list[tuple[Any, ...]]] = {}
        # Each gathered read still waiting in the queue: its position and its parameters (the keys, growing).
        self._open: dict[_Gathered, tuple[int, dict[str, list[Any]]]] = {}
        if begin and self._queued is not None:
            self._queued.append(("BEGIN", {}))

    def _driver_connection(self) -> Any:
        if self._driver is None:
            self._driver = self._conn.connection.driver_connection
        return self._driver

    def _cursor(self, statement: _Sql, params: dict[str, Any] | tuple[Any, ...]) -> Any:
        """Run a hot-path statement on the driver's connection, inside this transaction, with whatever is
        queued before it (PostgreSQL: in one round trip, with BEGIN when it opens the transaction)."""
        driver = self._driver_connection()
        if self._queued is None:  # SQLite: at once
            return driver.execute(statement.sqlite, params)
        if not self._queued and driver.info.transaction_status != _IDLE:
            return driver.execute(statement.postgresql, params)
        return self._cursors((statement, params))[0]

    def _cursors(self, *statements: tuple[_Sql, dict[str, Any] | tuple[Any, ...]]) -> list[Any]:
        """Several statements, after whatever is queued; on PostgreSQL all in one round trip."""
        driver = self._driver_connection()
        if self._queued is None:
            return [driver.execute(statement.sqlite, params) for statement, params in statements]
        queued = self._taken(self._queued)
        with driver.pipeline():
            sent = self._send(driver, queued)
            cursors = [driver.execute(statement.postgresql, params) for statement, params in statements]
        self._answered(sent)
        return cursors

    def _taken(self, queued: list[tuple[str, dict[str, Any] | tuple[Any, ...]]],
               ) -> list[tuple[str, dict[str, Any] | tuple[Any, ...]]]:
        """The queue (``queued``), taken to go to the database now: a new one starts, in which no gathered read is
        open, and the round trip is counted."""
        self._queued, self._open = [], {}
        self._flushes += 1
        return queued

    def _send(self, driver: Any, queued: list[tuple[str, dict[str, Any] | tuple[Any, ...]]]) -> list[Any]:
        """Send the queue into the open pipeline; the cursor of each statement, by position.

        A run of the same statement with values (a batch's audit rows, one a unit) goes as one ``executemany``:
        the same Bind and Execute messages in the same order, for a third less of psycopg's work a row. A run of
        rows appended to tables no other statement of the run touches (``_APPENDED``: a batch's CP-IS accesses,
        notifications and audit events, interleaved unit by unit) goes as one ``executemany`` a statement, in the
        order each statement first appears: nothing in between reads them, and they refer to nothing but rows
        inserted earlier in the same order. Nobody reads those statements' answers (a read queued ahead is always
        sent alone), so they have no cursor of their own; a row the database refuses fails the batch, whose units
        then run again one at a time."""
        ahead = set(self._ahead.values())
        sent: list[Any] = [None] * len(queued)
        start = 0
        while start < len(queued):
            text, values = queued[start]
            end = start + 1
            if text in _APPENDED and start not in ahead:
                runs: dict[str, list[Any]] = {text: [values]}
                while end < len(queued) and queued[end][0] in _APPENDED and end not in ahead:
                    runs.setdefault(queued[end][0], []).append(queued[end][1])
                    end += 1
                for appended, rows in runs.items():
                    if len(rows) > 1:
                        driver.cursor().executemany(appended, rows)
                    else:
                        driver.execute(appended, rows[0])
                start = end
                continue
            if values and start not in ahead:
                while end < len(queued) and queued[end][0] is text and end not in ahead:
                    end += 1
            if end - start > 1:
                driver.cursor().executemany(text, [row for _, row in queued[start:end]])
            else:
                sent[start] = driver.execute(text, values)
            start = end
        return sent

    def _answered(self, sent: list[Any]) -> None:
        """Keep the rows of the reads queued ahead, now that they have been answered (a gathered read's shared
        out by key)."""
        if not self._ahead:
            return
        rows_at: dict[int, list[tuple[Any, ...]]] = {}
        by_key_at: dict[int, dict[Any, list[tuple[Any, ...]]]] = {}
        for name, position in self._ahead.items():
            rows = rows_at.get(position)
            if rows is None:
                rows = rows_at[position] = sent[position].fetchall()
            keyed = self._keyed.get(name)
            if keyed is not None:
                by_key = by_key_at.get(position)
                if by_key is None:
                    by_key = by_key_at[position] = {}
                    columns = keyed[0]
                    for row in rows:
                        by_key.setdefault(tuple(row[c] for c in columns), []).append(row)
                rows = by_key.get(keyed[1], [])
            self._fetched[name] = rows
        self._ahead, self._keyed = {}, {}

    def _ahead_of_time(self, name: Any, statement: _Sql, params: dict[str, Any]) -> None:
        """Queue a read whose answer is wanted later (``_fetch``): it goes with the next round trip."""
        if self._queued is not None and name not in self._ahead and name not in self._fetched:
            self._ahead[name] = len(self._queued)
            self._queued.append((statement.postgresql, params))

    def _gathered(self, name: Any, read: _Gathered, key: tuple[Any, ...]) -> None:
        """Queue a read of ``key``'s rows whose answer is wanted later (``_fetch``), in one statement with the same
        read of every other key queued since the last round trip (a batch's searches: one SELECT, not one a unit)."""
        if self._queued is None or name in self._ahead or name in self._fetched:
            return
        opened = self._open.get(read)
        if opened is None or opened[0] >= len(self._queued) or self._queued[opened[0]][1] is not opened[1]:
            opened = self._open[read] = (len(self._queued), {param: [] for param in read.params})
            self._queued.append((read.postgresql, opened[1]))
        for param, part in zip(read.params, key, strict=True):
            opened[1][param].append(part)
        self._ahead[name] = opened[0]
        self._keyed[name] = (read.key, key)

    def _fetch(self, name: Any) -> list[tuple[Any, ...]] | None:
        """The rows of a read queued ahead (sent now if it is still waiting), or None if none was."""
        if name in self._ahead:
            self.flush()
        return self._fetched.pop(name, None)

    def flush(self, *, commit: bool = False) -> None:
        """PostgreSQL: send what is queued (and with ``commit``, COMMIT) in one round trip. COMMIT goes as a
        statement of the pipeline, so one sync answers for all (psycopg's ``commit()`` there would sync twice);
        SQLAlchemy's own COMMIT afterwards finds the transaction closed and sends nothing."""
        if not self._queued and not commit or self._queued is None:
            return
        driver = self._driver_connection()
        queued = self._taken(self._queued)
        with driver.pipeline():
            sent = self._send(driver, queued)
            if commit:
                driver.execute("COMMIT")
        self._answered(sent)

    def _sa(self, statement: Any) -> Any:
        """A SQLAlchemy statement, after what is queued."""
        self.flush()
        return self._conn.execute(statement)

    def _nested(self) -> Any:
        self.flush()
        return self._conn.begin_nested()

    def _one(self, statement: _Sql, params: dict[str, Any]) -> tuple[Any, ...] | None:
        return self._cursor(statement, params).fetchone()  # type: ignore[no-any-return]

    def _all(self, statement: _Sql, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._cursor(statement, params).fetchall()  # type: ignore[no-any-return]

    def _execute(self, statement: _Sql, params: dict[str, Any] | tuple[Any, ...]) -> None:
        """A statement whose answer is not needed: queued on PostgreSQL (its error, if any, is raised by
        the next statement that needs an answer, or by the commit; either fails the unit, and a batch's
        failure runs each unit again alone, so the error reaches the unit it belongs to)."""
        if self._queued is not None:
            self._queued.append((statement.postgresql, params))
        else:
            self._cursor(statement, params)
