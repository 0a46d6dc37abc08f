using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Outbox
{
    /// <summary>An event waiting in the outbox: its id is final (the store keeps it at replay).</summary>
    public sealed class SpooledEvent
    {
        public SpooledEvent(long outboxSeq, string id, string type)
        {
            OutboxSeq = outboxSeq;
            Id = id;
            Type = type;
        }

        /// <summary>Position in the outbox (replay order).</summary>
        public long OutboxSeq { get; }
        public string Id { get; }
        public string Type { get; }
    }

    public sealed class OutboxReplayResult
    {
        public OutboxReplayResult(int published, int alreadyInStore, int pending, IReadOnlyList<EventRecord> records, BmadGuardException? refusal = null)
        {
            Refusal = refusal;
            Published = published;
            AlreadyInStore = alreadyInStore;
            Pending = pending;
            Records = records;
        }

        /// <summary>Events this replay put into the store.</summary>
        public int Published { get; }

        /// <summary>Events found already in the store (an earlier replay crashed after publishing them): not published again.</summary>
        public int AlreadyInStore { get; }

        /// <summary>Events still waiting (the store refused again).</summary>
        public int Pending { get; }

        public IReadOnlyList<EventRecord> Records { get; }

        /// <summary>Why the store stopped the replay (LockTimeout, StoreFull, StoreDamaged), when it did.</summary>
        public BmadGuardException? Refusal { get; }
    }

    /// <summary>
    /// The durable outbox, <c>&lt;store&gt;/outbox/</c>: events that could not be published (lock timeout, disk full,
    /// store damaged) wait here, in order, until the store accepts again.
    /// <code>
    /// outbox/spool.jsonl    the spooled events, in the store's own record format (RecordCodec: body + crc trailer),
    ///                       "seq" being the outbox position and "id" the event's final id, given at spool time
    /// outbox/replay.json    the replay marker: {"acked":K,"ackedOffset":N,"inFlight":null|{"from","to","endOffset","storeSeqBefore"}}
    /// outbox/outbox.lock    spoolers and the replayer take it (StoreLock), one at a time
    /// outbox/reserve.bin    zeros kept in reserve: when the disk is full the spooler gives some back and spools anyway
    /// </code>
    /// spool.jsonl is never rewritten or deleted; replay reads it from <c>ackedOffset</c> on.
    /// <para>
    /// Exactly once, across crashes. Replay publishes the pending records in batches. Before a batch it makes the
    /// marker say "in flight: outbox seqs a..b, the store's last seq was at least L" durable (atomic replace with
    /// fsync); it then publishes the batch with the events' own ids (<see cref="FileEventStore.PublishWithIds"/>);
    /// after the store acknowledges, the marker says "acked up to b". A crash can stop this anywhere:
    /// (1) before the in-flight marker is durable: nothing of the batch was published, the old marker is used;
    /// (2) after the marker, before or during the publish: the store holds none, or a prefix, of the batch (the
    ///     store appends a batch in one write and cuts a torn remainder), so some ids are in the store and some not;
    /// (3) after the publish, before "acked": the store holds the whole batch.
    /// On the next replay an in-flight marker means: read the store's events after seq L (L was read before the
    /// publish and the log is append-only, so every event of the batch has a seq above L), collect their ids, and
    /// skip the batch's records whose id is there. Ids are GUIDs given at spool time, so "id present" means "this
    /// record was published". Nothing is published twice, nothing is skipped that was not published, and the
    /// remaining records go out in outbox order. A crash while spooling leaves an unterminated line: the caller was
    /// never told "spooled" (that happens after the fsync), and the torn bytes are cut to quarantine.
    /// </para>
    /// Spooled events get the store's timestamp when they are replayed (timestamps never go backwards along the log).
    /// </summary>
    public sealed class EventOutbox
    {
        public const string DirName = "outbox";
        public const string SpoolFileName = "spool.jsonl";
        public const string MarkerFileName = "replay.json";
        public const string LockFileName = "outbox.lock";
        public const string ReserveFileName = "reserve.bin";
        public const long DefaultReserveBytes = 1024 * 1024;

        /// <summary>
        /// The reserve never takes the disk below this much free space: it is only grown while at least this much would
        /// remain free after it, and it is given back (truncated) when free space falls under it, so the monitor that
        /// holds it never starves the publishers of the store it guards.
        /// </summary>
        public const long DefaultReserveFloorBytes = 64L * 1024 * 1024;

        /// <summary>The floor in force (monitor config <c>outbox.reserveFloorBytes</c>, default <see cref="DefaultReserveFloorBytes"/>).</summary>
        public long ReserveFloorBytes { get; set; } = DefaultReserveFloorBytes;

        /// <summary>Free bytes on the store's file system (a seam for tests; the real one is statvfs).</summary>
        internal Func<long> FreeSpace { get; set; }
        private const int BatchSize = 500;

        private readonly IStorageIO _io;

        public EventOutbox(string store, long reserveBytes = DefaultReserveBytes, IStorageIO? io = null)
        {
            Store = Path.GetFullPath(store);
            Dir = Path.Combine(Store, DirName);
            ReserveBytes = reserveBytes;
            _io = StoreFs.Confine(Store, io ?? OsStorageIO.Instance); // outbox/ and its files are never followed through a link
            FreeSpace = () =>
            {
                try
                {
                    return Health.HealthChecker.FreeBytes(Store);
                }
                catch (Exception ex) when (ex is IOException || ex is ArgumentException || ex is UnauthorizedAccessException)
                {
                    return long.MaxValue; // unknown: the size limit alone applies
                }
            };
        }

        public string Store { get; }
        public string Dir { get; }
        public long ReserveBytes { get; }
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);

        private string SpoolPath => Path.Combine(Dir, SpoolFileName);
        private string MarkerPath => Path.Combine(Dir, MarkerFileName);
        private string ReservePath => Path.Combine(Dir, ReserveFileName);

        private sealed class Marker
        {
            public long Acked;
            public long AckedOffset;
            public long? InFlightFrom;
            public long? InFlightTo;
            public long InFlightEndOffset;
            public long StoreSeqBefore;
        }

        /// <summary>Creates the folder and the reserve. Never throws for a full disk (the reserve is best effort).</summary>
        public void Ensure()
        {
            _io.CreateDirectory(Dir);
            EnsureReserve();
        }

        /// <summary>Cheap: true when spool.jsonl holds bytes past the acknowledged offset.</summary>
        public bool HasPending()
        {
            if (!File.Exists(SpoolPath))
            {
                return false;
            }

            long length = new FileInfo(SpoolPath).Length;
            return length > ReadMarker().AckedOffset;
        }

        /// <summary>Events in the outbox not yet acknowledged by the store.</summary>
        public int PendingCount()
        {
            if (!File.Exists(SpoolPath))
            {
                return 0;
            }

            var m = ReadMarker();
            return ReadRecords(m.AckedOffset).Count(r => r.Record != null);
        }

        /// <summary>
        /// Writes the events to the outbox durably and returns them with their final ids. Validates every draft
        /// first (a bad one throws and nothing is spooled).
        /// </summary>
        public IReadOnlyList<SpooledEvent> Spool(IReadOnlyList<EventDraft> drafts, EventLimits limits, CancellationToken cancellationToken = default)
        {
            var prepared = drafts.Select(d => EventSerializer.Prepare(d, limits)).ToList();
            // Not Ensure(): regrowing the reserve here would eat the very space it exists to give back.
            _io.CreateDirectory(Dir);
            using (StoreLock.Acquire(Path.Combine(Dir, LockFileName), LockTimeout, cancellationToken))
            {
                var marker = ReadMarker();
                long lastSeq = marker.Acked;
                long validEnd = marker.AckedOffset;
                foreach (var r in ReadRecords(marker.AckedOffset))
                {
                    if (r.Record == null)
                    {
                        break;
                    }

                    lastSeq = Math.Max(lastSeq, r.Record.Seq);
                    validEnd = r.End;
                }

                long length = File.Exists(SpoolPath) ? new FileInfo(SpoolPath).Length : 0;
                if (length > validEnd)
                {
                    QuarantineTornSpool(validEnd, length);
                }

                string ts = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture);
                var buffer = new MemoryStream();
                var result = new List<SpooledEvent>();
                foreach (var p in prepared)
                {
                    lastSeq++;
                    int start = (int)buffer.Length;
                    byte[] prefix = Encoding.ASCII.GetBytes("{\"seq\":" + lastSeq.ToString(CultureInfo.InvariantCulture) + ",\"id\":\"" + p.Id + "\",\"timestamp\":\"" + ts + "\"");
                    buffer.Write(prefix, 0, prefix.Length);
                    buffer.Write(p.Tail, 0, p.Tail.Length);
                    RecordCodec.AppendTrailer(buffer, start);
                    result.Add(new SpooledEvent(lastSeq, p.Id, p.Type));
                }

                AppendDurably(validEnd, buffer);
                return result;
            }
        }

        private void AppendDurably(long at, MemoryStream buffer)
        {
            for (int attempt = 0; ; attempt++)
            {
                Stream? stream = null;
                try
                {
                    stream = _io.OpenForWrite(SpoolPath, createNew: !File.Exists(SpoolPath));
                    stream.Position = at;
                    stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                    // The caller is told "spooled" only after this fsync: the same promise as a publish.
                    _io.Sync(stream);
                    stream.Dispose();
                    return;
                }
                catch (IOException ex)
                {
                    try
                    {
                        if (stream != null)
                        {
                            _io.SetLength(stream, at); // leave no half-written record behind
                            stream.Dispose();
                        }
                    }
                    catch (IOException)
                    {
                        // The next spooler or replayer finds the torn bytes and quarantines them.
                    }

                    var mapped = FileEventStore.MapIOException(ex, $"Cannot spool to the outbox '{SpoolPath}'", SpoolPath);
                    if (mapped.Code == ErrorCodes.StoreFull && attempt == 0 && GiveBackReserve(buffer.Length + 64 * 1024))
                    {
                        continue; // the disk was full: the reserve made room, try once more
                    }

                    throw mapped;
                }
            }
        }

        /// <summary>
        /// Publishes pending events into the store, in outbox order, exactly once (see the class comment for the
        /// crash reasoning). Stops at the first refusal (lock timeout, disk full, damage): those stay pending.
        /// </summary>
        public OutboxReplayResult Replay(FileEventStore store, CancellationToken cancellationToken = default)
        {
            if (!File.Exists(SpoolPath))
            {
                return new OutboxReplayResult(0, 0, 0, Array.Empty<EventRecord>());
            }

            using (StoreLock.Acquire(Path.Combine(Dir, LockFileName), LockTimeout, cancellationToken))
            {
                var marker = ReadMarker();
                var pending = ReadRecords(marker.AckedOffset).TakeWhile(r => r.Record != null).ToList();
                int published = 0, already = 0;
                var records = new List<EventRecord>();
                int index = 0;
                try
                {
                    if (marker.InFlightFrom.HasValue)
                    {
                        // A replay was interrupted: which of its batch reached the store?
                        var inStore = new HashSet<string>(StringComparer.Ordinal);
                        foreach (var e in store.Read(new EventQuery { After = marker.StoreSeqBefore }, cancellationToken))
                        {
                            inStore.Add(e.Id);
                        }

                        var toPublish = new List<(long Seq, long End, EventRecord Rec)>();
                        long lastInFlightEnd = marker.AckedOffset;
                        while (index < pending.Count && pending[index].Record!.Seq <= marker.InFlightTo!.Value)
                        {
                            var r = pending[index++];
                            lastInFlightEnd = r.End;
                            if (inStore.Contains(r.Record!.Id))
                            {
                                already++;
                            }
                            else
                            {
                                toPublish.Add((r.Record.Seq, r.End, r.Record));
                            }
                        }

                        if (toPublish.Count > 0)
                        {
                            // Same batch again (its unpublished part), still under the in-flight marker: the
                            // marker's L is still a valid lower bound for these seqs.
                            records.AddRange(PublishBatch(store, toPublish.Select(t => t.Rec).ToList(), cancellationToken));
                            published += toPublish.Count;
                        }

                        marker = new Marker { Acked = marker.InFlightTo!.Value, AckedOffset = lastInFlightEnd };
                        WriteMarker(marker);
                    }

                    while (index < pending.Count)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var batch = pending.Skip(index).Take(BatchSize).ToList();
                        long from = batch[0].Record!.Seq, to = batch[batch.Count - 1].Record!.Seq;
                        long end = batch[batch.Count - 1].End;
                        var inFlight = new Marker
                        {
                            Acked = marker.Acked, AckedOffset = marker.AckedOffset,
                            InFlightFrom = from, InFlightTo = to, InFlightEndOffset = end, StoreSeqBefore = StoreLastSeqLowerBound(store),
                        };
                        WriteMarker(inFlight);
                        records.AddRange(PublishBatch(store, batch.Select(b => b.Record!).ToList(), cancellationToken));
                        published += batch.Count;
                        marker = new Marker { Acked = to, AckedOffset = end };
                        WriteMarker(marker);
                        index += batch.Count;
                    }
                }
                catch (Exception e) when ((e is BmadGuardException b && b.Kind == FailureKind.StoreProblem) || e is IOException)
                {
                    // The store refused again, or a marker could not be written (disk full): what is left stays
                    // pending. Safe either way: an unwritten in-flight marker means the batch was not published; an
                    // unwritten "acked" marker leaves the in-flight one, and the next replay finds the ids.
                    var ex = e as BmadGuardException ?? FileEventStore.MapIOException((IOException)e, $"Cannot write the outbox replay marker '{MarkerPath}'", MarkerPath);
                    int left = ReadRecords(ReadMarker().AckedOffset).Count(r => r.Record != null);
                    return new OutboxReplayResult(published, already, Math.Max(0, left), records, ex);
                }

                EnsureReserve();
                return new OutboxReplayResult(published, already, 0, records);
            }
        }

        private static IReadOnlyList<EventRecord> PublishBatch(FileEventStore store, List<EventRecord> batch, CancellationToken ct)
        {
            var drafts = batch.Select(r => (EventDraft.FromJson(r.Type, r.Source, r.CorrelationId, r.DataUtf8), (string?)r.Id)).ToList();
            return store.PublishWithIds(drafts, allowReserved: false, null, ct);
        }

        /// <summary>The store's last seq as of now, read without the lock: a lower bound of any seq assigned later.</summary>
        private static long StoreLastSeqLowerBound(FileEventStore store)
        {
            var segments = SegmentNames.List(store.SegmentsDir);
            if (segments.Count == 0)
            {
                return 0;
            }

            var tail = SegmentTail.Scan(segments[segments.Count - 1].Path);
            return tail.LastSeq;
        }

        private sealed class SpoolLine
        {
            public EventRecord? Record;
            public long Offset;
            public long End;
        }

        private IEnumerable<SpoolLine> ReadRecords(long from)
        {
            if (!File.Exists(SpoolPath))
            {
                yield break;
            }

            foreach (var line in SegmentReader.ReadLines(SpoolPath, from))
            {
                EventRecord? record = line.Terminated && RecordCodec.ChecksumOk(line.Span) ? RecordCodec.DecodeEvent(line.Span) : null;
                yield return new SpoolLine { Record = record, Offset = line.Offset, End = line.End };
                if (record == null)
                {
                    yield break;
                }
            }
        }

        private void QuarantineTornSpool(long validEnd, long length)
        {
            byte[] torn = new byte[length - validEnd];
            using (var read = new FileStream(SpoolPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1))
            {
                read.Position = validEnd;
                int done = 0;
                while (done < torn.Length)
                {
                    int n = read.Read(torn, done, torn.Length - done);
                    if (n == 0)
                    {
                        break;
                    }

                    done += n;
                }
            }

            string qdir = Path.Combine(Store, StorePaths.QuarantineDirName);
            _io.CreateDirectory(qdir);
            string qpath = Path.Combine(qdir, $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-outbox-spool-at-{validEnd}.torn");
            using (var q = _io.OpenForWrite(qpath, createNew: true))
            {
                q.Write(torn, 0, torn.Length);
                _io.Sync(q); // the cut bytes are durable in quarantine before the spool loses them
            }

            _io.SyncDirectory(qdir);
            using var s = _io.OpenForWrite(SpoolPath, createNew: false);
            _io.SetLength(s, validEnd);
            _io.Sync(s); // the cut is durable before new records are appended after it
        }

        private Marker ReadMarker()
        {
            if (!File.Exists(MarkerPath))
            {
                return new Marker();
            }

            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(MarkerPath));
                var r = doc.RootElement;
                var m = new Marker { Acked = r.GetProperty("acked").GetInt64(), AckedOffset = r.GetProperty("ackedOffset").GetInt64() };
                if (r.TryGetProperty("inFlight", out var f) && f.ValueKind == JsonValueKind.Object)
                {
                    m.InFlightFrom = f.GetProperty("from").GetInt64();
                    m.InFlightTo = f.GetProperty("to").GetInt64();
                    m.InFlightEndOffset = f.GetProperty("endOffset").GetInt64();
                    m.StoreSeqBefore = f.GetProperty("storeSeqBefore").GetInt64();
                }

                return m;
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The outbox replay marker '{MarkerPath}' is damaged ({ex.Message}); replay stopped so nothing is published twice. Inspect it and outbox/{SpoolFileName}.", MarkerPath, inner: ex);
            }
        }

        private void WriteMarker(Marker m)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("acked", m.Acked);
                w.WriteNumber("ackedOffset", m.AckedOffset);
                if (m.InFlightFrom.HasValue)
                {
                    w.WriteStartObject("inFlight");
                    w.WriteNumber("from", m.InFlightFrom.Value);
                    w.WriteNumber("to", m.InFlightTo!.Value);
                    w.WriteNumber("endOffset", m.InFlightEndOffset);
                    w.WriteNumber("storeSeqBefore", m.StoreSeqBefore);
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteNull("inFlight");
                }

                w.WriteString("updated", DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }

            // AtomicFile fsyncs the file and the directory. For the in-flight marker this is what makes replay
            // exactly-once: it must be durable before the batch is published. For the acked marker it saves the
            // next replay an id scan (correctness would hold without it: the in-flight check finds the ids).
            AtomicFile.Write(_io, MarkerPath, buffer.ToArray());
        }

        /// <summary>The reserve's size now (0 when there is none).</summary>
        public long ReserveSize => File.Exists(ReservePath) ? new FileInfo(ReservePath).Length : 0;

        /// <summary>
        /// Grows the reserve towards <see cref="ReserveBytes"/>, but only as far as free space stays at or above
        /// <see cref="ReserveFloorBytes"/>; when free space is already below the floor, the reserve is given back
        /// instead (publishers need the space more than a future spool does).
        /// </summary>
        public void EnsureReserve()
        {
            if (ReserveBytes <= 0)
            {
                return;
            }

            try
            {
                long have = ReserveSize;
                long free = FreeSpace();
                if (free < ReserveFloorBytes)
                {
                    if (have > 0)
                    {
                        GiveBackReserve(Math.Min(have, ReserveFloorBytes - free));
                    }

                    return;
                }

                long target = Math.Min(ReserveBytes, have + (free - ReserveFloorBytes));
                if (have >= target)
                {
                    return;
                }

                // Real zeros, not SetLength: a sparse file would reserve nothing.
                using var s = StoreFs.OpenOrCreate(Store, ReservePath, FileAccess.Write);
                s.Position = have;
                var zeros = new byte[64 * 1024];
                while (s.Position < target)
                {
                    s.Write(zeros, 0, (int)Math.Min(zeros.Length, target - s.Position));
                }

                s.Flush(true); // the blocks must be allocated now, not at writeback when the disk may be full
            }
            catch (IOException)
            {
                // No room for the reserve right now: it is regrown after the next successful replay.
            }
        }

        private bool GiveBackReserve(long bytes)
        {
            try
            {
                if (!File.Exists(ReservePath))
                {
                    return false;
                }

                long have = new FileInfo(ReservePath).Length;
                if (have == 0)
                {
                    return false;
                }

                using var s = StoreFs.OpenOrCreate(Store, ReservePath, FileAccess.Write);
                s.SetLength(Math.Max(0, have - Math.Max(bytes, Math.Min(have, 64 * 1024))));
                // fsync the shrink: the freed blocks count as free space for the spool write that follows only once
                // the truncation is committed (some filesystems hold freed extents until the journal commits).
                s.Flush(true);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }
    }
}
