using System;
using System.Buffers;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using BmadGuard.Core.Events;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// The store: a directory holding an append-only log of checksummed JSON Lines in segments.
    /// <code>
    /// store/
    ///   bmadguard.store.json      settings, written once at creation (atomic replace)
    ///   writer.lock               the writers' OS lock (its contents mean nothing)
    ///   segments/segment-&lt;firstSeq&gt;.jsonl   header line, then one record per line; only the last is ever appended to
    ///   consumers/&lt;name&gt;.json     a consumer's position (atomic replace)
    ///   quarantine/               bytes cut from the log, never deleted
    /// </code>
    /// Publishing: validate and serialize in memory; take the lock; make sure the tail is clean (a writer
    /// may have died mid-append); append; fsync; release; acknowledge. See docs/store-format.md.
    /// </summary>
    public sealed class FileEventStore : IEventStore
    {
        private static readonly Regex ConsumerNameRegex = new Regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", RegexOptions.CultureInvariant);
        private static readonly Regex ImportedIdRegex = new Regex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", RegexOptions.CultureInvariant);

        private readonly object _writeGate = new object();
        private readonly IStorageIO _io;
        private readonly StoreOpenOptions _options;
        private readonly List<StoreNotice> _notices = new List<StoreNotice>();
        private ActiveSegment? _active;
        private bool _disposed;

        private FileEventStore(string root, StoreSettings settings, StoreOpenOptions options)
        {
            Root = root;
            Settings = settings;
            _options = options;
            _io = StoreFs.Confine(root, options.IO); // nothing below the root is followed through a link
            Limits = new EventLimits(settings.MaxEventBytes, settings.MaxDepth);
        }

        public string Root { get; }

        public string Location => Root;

        public StoreSettings Settings { get; }

        public EventLimits Limits { get; }

        public IReadOnlyList<StoreNotice> Notices
        {
            get
            {
                lock (_notices)
                {
                    return _notices.ToArray();
                }
            }
        }

        public string SegmentsDir => Path.Combine(Root, StorePaths.SegmentsDirName);

        public string ConsumersDir => Path.Combine(Root, StorePaths.ConsumersDirName);

        public string QuarantineDir => Path.Combine(Root, StorePaths.QuarantineDirName);

        public string LockPath => Path.Combine(Root, StorePaths.LockFileName);

        public TimeSpan LockTimeout => _options.LockTimeout;

        // ------------------------------------------------------------------ create and open

        /// <summary>
        /// Creates a store, or opens the one already there (<paramref name="created"/> tells which).
        /// Refuses a directory that holds other files.
        /// </summary>
        public static FileEventStore Initialize(string root, StoreSettings? settings, StoreOpenOptions? options, out bool created)
        {
            options ??= new StoreOpenOptions();
            settings ??= new StoreSettings();
            root = Path.GetFullPath(root);
            if (StorePaths.IsStore(root))
            {
                created = false;
                return Open(root, options);
            }

            ValidateSettings(settings);
            if (File.Exists(root))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"Cannot create a store at '{root}': it is a file.", root);
            }

            if (Directory.Exists(root) && Directory.GetFileSystemEntries(root).Length > 0 && !IsUnfinishedStore(root))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"Cannot create a store at '{root}': the directory is not empty and is not a BmadGuard store.", root);
            }

            var io = StoreFs.Confine(root, options.IO);
            string? parent = Path.GetDirectoryName(root);
            try
            {
                io.CreateDirectory(root);
                io.CreateDirectory(Path.Combine(root, StorePaths.SegmentsDirName));
                io.CreateDirectory(Path.Combine(root, StorePaths.ConsumersDirName));
                io.CreateDirectory(Path.Combine(root, StorePaths.QuarantineDirName));
                var store = new FileEventStore(root, settings, options);
                bool made = false;
                using (StoreLock.Acquire(store.LockPath, options.LockTimeout))
                {
                    if (!StorePaths.IsStore(root))
                    {
                        made = true;
                        if (SegmentNames.List(store.SegmentsDir).Count == 0)
                        {
                            store.CreateSegment(1);
                        }

                        // The settings file goes last: its presence is what makes the directory a store,
                        // so a crash during creation leaves something Initialize can simply finish.
                        AtomicFile.Write(io, Path.Combine(root, StorePaths.MetaFileName), EncodeSettings(settings));
                        if (parent != null)
                        {
                            io.SyncDirectory(parent); // the store directory itself must survive a crash
                        }
                    }
                }

                if (!made)
                {
                    // Another process finished creating it while we waited for the lock: open what it made
                    // (its settings, not ours) and do not claim the creation.
                    store.Dispose();
                    created = false;
                    return Open(root, options);
                }

                created = true;
                return store;
            }
            catch (IOException ex)
            {
                throw MapIOException(ex, $"Cannot create a store at '{root}'", root);
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new BmadGuardException(ErrorCodes.StoreIOError, FailureKind.StoreProblem,
                    $"Cannot create a store at '{root}': access denied ({ex.Message}).", root, inner: ex);
            }
        }

        /// <summary>
        /// True when the directory holds nothing but what Initialize itself creates: a creation cut short by a
        /// crash or power loss, or one another process is doing right now. Initialize finishes (or opens) it
        /// instead of refusing.
        /// </summary>
        private static bool IsUnfinishedStore(string root)
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(root))
            {
                string name = Path.GetFileName(entry);
                bool ours = Directory.Exists(entry)
                    ? name == StorePaths.SegmentsDirName || name == StorePaths.ConsumersDirName || name == StorePaths.QuarantineDirName
                    : name == StorePaths.LockFileName
                      || name == StorePaths.MetaFileName // another init finished meanwhile: it is a store now
                      || (name.StartsWith("." + StorePaths.MetaFileName + ".", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal));
                if (!ours)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Opens an existing store; a torn tail left by a crash is cut and quarantined.</summary>
        public static FileEventStore Open(string root, StoreOpenOptions? options = null)
        {
            options ??= new StoreOpenOptions();
            root = Path.GetFullPath(root);
            string meta = Path.Combine(root, StorePaths.MetaFileName);
            if (!File.Exists(meta))
            {
                throw new BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem,
                    Directory.Exists(root)
                        ? $"'{root}' is not a BmadGuard store (no {StorePaths.MetaFileName})."
                        : $"No BmadGuard store at '{root}'.", root);
            }

            var store = new FileEventStore(root, ReadSettings(meta), options);
            store.CheckPermissions();
            store.RecoverTailIfTorn();
            return store;
        }

        /// <summary>
        /// The limits a store checks events against, read from its settings without opening it (no lock, no tail
        /// check); the defaults when there is no store there (opening it then reports that).
        /// </summary>
        public static EventLimits ReadLimits(string root)
        {
            string meta = Path.Combine(Path.GetFullPath(root), StorePaths.MetaFileName);
            if (!File.Exists(meta))
            {
                return EventLimits.Default;
            }

            var s = ReadSettings(meta);
            return new EventLimits(s.MaxEventBytes, s.MaxDepth);
        }

        private static void ValidateSettings(StoreSettings s)
        {
            if (s.MaxEventBytes < 1024 || s.MaxDepth < 1 || s.MaxDepth > 1000 || s.SegmentMaxBytes < s.MaxEventBytes)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    "Store settings are not valid: MaxEventBytes must be at least 1024, MaxDepth 1 to 1000, and SegmentMaxBytes at least MaxEventBytes.");
            }
        }

        internal static byte[] EncodeSettings(StoreSettings s)
        {
            var buffer = new MemoryStream();
            // Relaxed escaping: a file a person reads, not HTML, so the timestamp's '+' is written as '+', not \u002B.
            using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                string created = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture);
                w.WriteStartObject();
                w.WriteString("format", "bmadguard-store/1");
                w.WriteString("created", created);
                w.WriteNumber("segmentMaxBytes", s.SegmentMaxBytes);
                w.WriteNumber("maxEventBytes", s.MaxEventBytes);
                w.WriteNumber("maxDepth", s.MaxDepth);
                // Lets Test-BmadIntegrity detect a flipped digit (see MetadataChecksum); readers ignore it.
                w.WriteString(MetadataChecksum.PropertyName, MetadataChecksum.Settings("bmadguard-store/1", created,
                    s.SegmentMaxBytes.ToString(CultureInfo.InvariantCulture), s.MaxEventBytes.ToString(CultureInfo.InvariantCulture),
                    s.MaxDepth.ToString(CultureInfo.InvariantCulture)));
                w.WriteEndObject();
            }

            buffer.WriteByte((byte)'\n');
            return buffer.ToArray();
        }

        private static StoreSettings ReadSettings(string metaPath)
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(metaPath));
                var root = doc.RootElement;
                string? format = root.GetProperty("format").GetString();
                if (format != "bmadguard-store/1")
                {
                    throw new BmadGuardException(ErrorCodes.UnsupportedFormat, FailureKind.StoreProblem,
                        $"'{metaPath}' has format '{format}', which this version of BmadGuard does not read.", metaPath);
                }

                var s = new StoreSettings
                {
                    SegmentMaxBytes = root.GetProperty("segmentMaxBytes").GetInt64(),
                    MaxEventBytes = root.GetProperty("maxEventBytes").GetInt32(),
                    MaxDepth = root.GetProperty("maxDepth").GetInt32(),
                };
                ValidateSettings(s);
                return s;
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException
                                       || (ex is BmadGuardException bge && bge.Code == ErrorCodes.InvalidArgument))
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The store's settings file '{metaPath}' is damaged: {ex.Message}", metaPath, inner: ex);
            }
        }

        private void CheckPermissions()
        {
#if NET8_0_OR_GREATER
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            const UnixFileMode wide = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                      | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            foreach (string path in new[] { Root, SegmentsDir, Path.Combine(Root, StorePaths.MetaFileName) })
            {
                try
                {
                    var mode = File.GetUnixFileMode(path);
                    if ((mode & wide) != 0)
                    {
                        AddNotice(new StoreNotice("StorePermissionsTooWide",
                            $"'{path}' is readable or writable by others (mode {Convert.ToString((int)mode, 8)}); BmadGuard creates stores owner-only (0700/0600).", path));
                    }
                }
                catch (IOException)
                {
                }
            }
#endif
        }

        private void AddNotice(StoreNotice notice)
        {
            lock (_notices)
            {
                _notices.Add(notice);
            }
        }

        // ------------------------------------------------------------------ the writer's view of the tail

        /// <summary>The segment being appended to, as this process last saw it under the lock.</summary>
        private sealed class ActiveSegment
        {
            public ActiveSegment(string path, long firstSeq, long validEnd, long lastSeq, DateTimeOffset? lastTimestamp)
            {
                Path = path;
                FirstSeq = firstSeq;
                ValidEnd = validEnd;
                LastSeq = lastSeq;
                LastTimestamp = lastTimestamp;
            }

            public string Path { get; }
            public long FirstSeq { get; }
            public long ValidEnd { get; set; }
            public long LastSeq { get; set; }
            public DateTimeOffset? LastTimestamp { get; set; }
            public Stream? Stream { get; set; }

            /// <summary>The writer epoch this view was built under (see <see cref="StoreLock.ReadEpoch"/>).</summary>
            public long Epoch { get; set; }
        }

        private void RecoverTailIfTorn()
        {
            var segments = SegmentNames.List(SegmentsDir);
            if (segments.Count == 0)
            {
                // Only possible if someone removed the segments: let the writer path report or recreate under the lock.
                return;
            }

            SegmentTail tail;
            try
            {
                tail = SegmentTail.Scan(segments[segments.Count - 1].Path);
            }
            catch (IOException ex) when (ex is FileNotFoundException || ex is DirectoryNotFoundException)
            {
                // This look takes no lock: a restore or repair swapped the segment files between the listing and the read.
                // Nothing is known about the tail, so look again under the lock, where no swap can be in progress.
                tail = new SegmentTail(0, 0, 0, 1, 0, null);
            }

            if (tail.TornBytes == 0 || tail.DamagedRecords > 0)
            {
                return; // (damaged complete records are not cut: readers meet them as damage, writers refuse)
            }

            // Maybe a writer is mid-append right now: decide under the lock.
            lock (_writeGate)
            {
                try
                {
                    using (var held = AcquireLock(CancellationToken.None))
                    {
                        SyncActiveSegment(held);
                    }
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
                {
                    // Readers must not fail because a writer is busy; readers stop before an unchecked tail anyway.
                    AddNotice(new StoreNotice("TailNotChecked",
                        $"The end of the log looks incomplete, but the writers' lock was busy, so it was not checked now; the next writer will. ({ex.Message})", LockPath));
                }
            }
        }

        private StoreLock AcquireLock(CancellationToken cancellationToken) => StoreLock.Acquire(LockPath, _options.LockTimeout, cancellationToken);

        private static SegmentTail ScanTailOrThrow(string path)
        {
            try
            {
                return SegmentTail.Scan(path);
            }
            catch (IOException ex)
            {
                throw MapIOException(ex, $"Cannot read segment '{path}'", path);
            }
        }

        /// <summary>
        /// Under the lock: brings <see cref="_active"/> up to date with the files (other processes append and
        /// roll over too) and cuts a torn tail. Cheap when nothing changed: one fstat and one existence probe.
        /// </summary>
        private ActiveSegment SyncActiveSegment(StoreLock held)
        {
            var active = _active;
            long epoch = held.ReadEpoch();
            if (active != null && active.Stream != null && active.Epoch == epoch)
            {
                long length = active.Stream.Length;
                if (length == active.ValidEnd && !File.Exists(Path.Combine(SegmentsDir, SegmentNames.For(active.LastSeq + 1))))
                {
                    return active;
                }
            }

            CloseActive();
            var segments = SegmentNames.List(SegmentsDir);
            if (segments.Count == 0)
            {
                if (!StorePaths.IsStore(Root))
                {
                    throw new BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem, $"The store at '{Root}' is gone.", Root);
                }

                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The store at '{Root}' has no segments: '{SegmentsDir}' is empty.", SegmentsDir);
            }

            var (firstSeq, path) = segments[segments.Count - 1];
            var tail = ScanTailOrThrow(path);
            if (tail.FirstSeq != firstSeq)
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"Segment '{path}' says it starts at seq {tail.FirstSeq}, but its name says {firstSeq}.", path, 0);
            }

            if (tail.DamagedRecords > 0)
            {
                // Cutting these would drop records that were complete (acknowledged, maybe read by a consumer) and
                // hand their seqs to new events: a consumer past them would then skip the new ones.
                throw Damage(path, tail.FirstDamagedRecordOffset,
                    $"the last {(tail.DamagedRecords == 1 ? "record is" : tail.DamagedRecords + " records are")} complete but fail{(tail.DamagedRecords == 1 ? "s" : "")} its checksum (a changed byte, not a crash: a torn write never ends in a complete line). "
                    + "Nothing is appended after damage and nothing was cut");
            }

            var stream = OpenSegmentForWrite(path);
            active = new ActiveSegment(path, firstSeq, tail.ValidEnd, tail.LastSeq, tail.LastTimestamp) { Stream = stream, Epoch = epoch };
            if (active.LastTimestamp == null && segments.Count > 1)
            {
                active.LastTimestamp = SegmentTail.Scan(segments[segments.Count - 2].Path).LastTimestamp;
            }

            if (tail.TornBytes > 0)
            {
                QuarantineTail(active, tail.FileLength);
            }

            _active = active;
            return active;
        }

        private Stream OpenSegmentForWrite(string path)
        {
            try
            {
                return _io.OpenForWrite(path, createNew: false);
            }
            catch (IOException ex)
            {
                throw MapIOException(ex, $"Cannot open segment '{path}' for writing", path);
            }
        }

        /// <summary>
        /// Cuts the bytes after the last valid record. They are copied to quarantine and fsynced first, so
        /// they are never lost; only then is the segment truncated (and fsynced, so the cut is durable before
        /// anything new is appended after it).
        /// </summary>
        private void QuarantineTail(ActiveSegment active, long fileLength)
        {
            long count = fileLength - active.ValidEnd;
            byte[] torn = new byte[count];
            using (var read = new FileStream(active.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1))
            {
                read.Position = active.ValidEnd;
                int done = 0;
                while (done < count)
                {
                    int n = read.Read(torn, done, (int)(count - done));
                    if (n == 0)
                    {
                        break;
                    }

                    done += n;
                }
            }

            string name = $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-{Path.GetFileNameWithoutExtension(active.Path)}-at-{active.ValidEnd}.torn";
            string quarantinePath = Path.Combine(QuarantineDir, name);
            bool created = false;
            try
            {
                if (!Directory.Exists(QuarantineDir))
                {
                    _io.CreateDirectory(QuarantineDir);
                    _io.SyncDirectory(Root); // a new quarantine/ must itself survive a crash, or the copy inside it is lost
                }

                using (var q = _io.OpenForWrite(quarantinePath, createNew: true))
                {
                    created = true;
                    q.Write(torn, 0, torn.Length);
                    _io.Sync(q); // the cut bytes must be durable before the segment loses them
                }

                _io.SyncDirectory(QuarantineDir); // and so must the quarantine file's name
            }
            catch (IOException ex)
            {
                // Nothing is cut unless the copy is safe; a partial copy is no use to anyone.
                if (created)
                {
                    try
                    {
                        File.Delete(quarantinePath);
                    }
                    catch (IOException)
                    {
                    }
                }

                active.Stream?.Dispose(); // not yet the active segment: nobody else would close it
                active.Stream = null;
                throw MapIOException(ex, $"Cannot quarantine the torn tail of '{active.Path}' (so it was left in place)", active.Path);
            }

            _io.SetLength(active.Stream!, active.ValidEnd);
            _io.Sync(active.Stream!); // the truncation is durable before new records land after it

            AddNotice(new StoreNotice("TornTailRepaired",
                $"Cut a torn tail of {count} bytes at offset {active.ValidEnd} of '{active.Path}' (an incomplete record left by a crash); the bytes are in '{quarantinePath}'.",
                active.Path, active.ValidEnd, quarantinePath, count));
        }

        private void CloseActive()
        {
            if (_active?.Stream != null)
            {
                _active.Stream.Dispose();
                _active.Stream = null;
            }

            _active = null;
        }

        /// <summary>Creates a segment whole: header to a temporary name, fsync, rename, fsync the directory.</summary>
        private string CreateSegment(long firstSeq)
        {
            string path = Path.Combine(SegmentsDir, SegmentNames.For(firstSeq));
            if (File.Exists(path))
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"Segment '{path}' already exists although the log ends before seq {firstSeq}.", path);
            }

            string temp = Path.Combine(SegmentsDir, "." + SegmentNames.For(firstSeq) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            byte[] header = SegmentHeader.Encode(firstSeq, DateTimeOffset.UtcNow);
            try
            {
                using (var s = _io.OpenForWrite(temp, createNew: true))
                {
                    s.Write(header, 0, header.Length);
                    _io.Sync(s); // the header is durable before the name exists: a segment is never seen headerless
                }

                _io.Move(temp, path);
                _io.SyncDirectory(SegmentsDir); // the new segment's name survives a crash before any record goes in it
            }
            catch (Exception ex)
            {
                try
                {
                    File.Delete(temp);
                }
                catch (IOException)
                {
                }

                if (ex is IOException io)
                {
                    // A disk that fills up at a rollover is StoreFull like any other append, not a bare I/O error.
                    throw MapIOException(io, $"Cannot create segment '{path}'", path);
                }

                throw;
            }

            return path;
        }

        // ------------------------------------------------------------------ publish

        public IReadOnlyList<EventRecord> Publish(IReadOnlyList<EventDraft> drafts, Action<EventRecord>? acknowledged = null, CancellationToken cancellationToken = default)
        {
            var prepared = new List<PreparedEvent>(drafts.Count);
            foreach (var draft in drafts)
            {
                prepared.Add(EventSerializer.Prepare(draft, Limits));
            }

            return Append(prepared, acknowledged, cancellationToken);
        }

        public BatchPublishResult PublishEach(IReadOnlyList<EventDraft> drafts, Action<int, EventRecord>? acknowledged = null, CancellationToken cancellationToken = default)
        {
            // Validate every item before the lock: a bad one is only reported, so the rest still go in, in order,
            // under the one fsync of the batch (no retry one at a time).
            var prepared = new List<PreparedEvent>(drafts.Count);
            var indexes = new List<int>(drafts.Count);
            var rejected = new List<RejectedDraft>();
            for (int i = 0; i < drafts.Count; i++)
            {
                try
                {
                    prepared.Add(EventSerializer.Prepare(drafts[i], Limits));
                    indexes.Add(i);
                }
                catch (BmadGuardException ex) when (ex.Kind == FailureKind.InvalidInput)
                {
                    rejected.Add(new RejectedDraft(i, ex));
                }
            }

            int acked = 0;
            var published = Append(prepared, acknowledged == null ? null : r => acknowledged(indexes[acked++], r), cancellationToken);
            return new BatchPublishResult(published, rejected);
        }

        /// <summary>Publishes one event (convenience).</summary>
        public EventRecord Publish(EventDraft draft, CancellationToken cancellationToken = default)
            => Publish(new[] { draft }, null, cancellationToken)[0];

        /// <summary>
        /// Publishes events that keep their own id (imports, outbox replay). <paramref name="allowReserved"/>
        /// lets BmadGuard itself use the reserved <c>bmadguard.*</c> types (health probes).
        /// </summary>
        public IReadOnlyList<EventRecord> PublishWithIds(IReadOnlyList<(EventDraft Draft, string? Id)> drafts, bool allowReserved, Action<EventRecord>? acknowledged = null, CancellationToken cancellationToken = default)
        {
            var prepared = new List<PreparedEvent>(drafts.Count);
            foreach (var (draft, id) in drafts)
            {
                if (id != null && !ImportedIdRegex.IsMatch(id))
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                        $"Event id '{id}' is not valid: use 1 to 128 characters of letters, digits, '_', '.', ':' and '-'.");
                }

                prepared.Add(EventSerializer.Prepare(draft, Limits, allowReserved, id));
            }

            return Append(prepared, acknowledged, cancellationToken);
        }

        /// <summary>
        /// Publishes events that keep their own id AND their own time (Import-BmadLegacyBus). The log's rule
        /// that timestamps never go backwards still holds: a timestamp earlier than the log's last one is
        /// raised to it (the returned record shows the time actually stored; callers report the adjustment).
        /// </summary>
        internal IReadOnlyList<EventRecord> PublishImported(IReadOnlyList<(EventDraft Draft, string Id, DateTimeOffset Timestamp)> events, Action<EventRecord>? acknowledged = null, CancellationToken cancellationToken = default, bool allowReserved = false)
        {
            var prepared = new List<PreparedEvent>(events.Count);
            var timestamps = new List<DateTimeOffset?>(events.Count);
            foreach (var (draft, id, timestamp) in events)
            {
                if (!ImportedIdRegex.IsMatch(id))
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                        $"Event id '{id}' is not valid: use 1 to 128 characters of letters, digits, '_', '.', ':' and '-'.");
                }

                prepared.Add(EventSerializer.Prepare(draft, Limits, allowReserved, id));
                timestamps.Add(timestamp.ToUniversalTime());
            }

            return Append(prepared, acknowledged, cancellationToken, timestamps);
        }

        private IReadOnlyList<EventRecord> Append(List<PreparedEvent> prepared, Action<EventRecord>? acknowledged, CancellationToken cancellationToken, List<DateTimeOffset?>? explicitTimestamps = null)
        {
            var results = new List<EventRecord>(prepared.Count);
            if (prepared.Count == 0)
            {
                return results;
            }

            lock (_writeGate)
            {
                ThrowIfDisposed();
                using (var held = AcquireLock(cancellationToken))
                {
                    var active = SyncActiveSegment(held);
                    var buffer = RentBatchBuffer(prepared, out byte[] rented);
                    var pending = new List<EventRecord>(prepared.Count);
                    DateTimeOffset now = DateTimeOffset.UtcNow;
                    // Timestamps never go backwards along the log, even if the clock does.
                    DateTimeOffset timestamp = active.LastTimestamp.HasValue && active.LastTimestamp.Value > now ? active.LastTimestamp.Value : now;
                    string ts = timestamp.ToString("o", CultureInfo.InvariantCulture);
                    long seq = active.LastSeq;
                    DateTimeOffset? logLast = active.LastTimestamp;

                    for (int index = 0; index < prepared.Count; index++)
                    {
                        var p = prepared[index];
                        if (explicitTimestamps?[index] is DateTimeOffset wanted)
                        {
                            // Imported events keep their time unless that would make the log go backwards.
                            timestamp = logLast.HasValue && logLast.Value > wanted ? logLast.Value : wanted;
                            ts = timestamp.ToString("o", CultureInfo.InvariantCulture);
                        }

                        logLast = timestamp;
                        seq++;
                        int lineStart = (int)buffer.Length;
                        int prefixLength = WritePrefix(buffer, seq, p.Id, ts);
                        buffer.Write(p.Tail, 0, p.Tail.Length);
                        int bodyEnd = (int)buffer.Length;
                        RecordCodec.AppendTrailer(buffer, lineStart);
                        int lineLength = (int)buffer.Length - lineStart;

                        bool full = active.ValidEnd + buffer.Length > Settings.SegmentMaxBytes;
                        bool segmentHasRecords = active.LastSeq >= active.FirstSeq || lineStart > 0;
                        if (full && segmentHasRecords)
                        {
                            // Roll over: what is already buffered goes to the current segment, durably, and is
                            // acknowledged; this record starts a new segment.
                            byte[] line = new byte[lineLength];
                            Buffer.BlockCopy(buffer.GetBuffer(), lineStart, line, 0, lineLength);
                            buffer.SetLength(lineStart);
                            if (buffer.Length > 0)
                            {
                                WriteDurably(active, buffer, timestamp);
                                Acknowledge(pending, results, acknowledged);
                            }

                            CloseActive();
                            string path = CreateSegment(seq);
                            active = new ActiveSegment(path, seq, 0, seq - 1, timestamp) { Stream = OpenSegmentForWrite(path), Epoch = active.Epoch };
                            active.ValidEnd = active.Stream.Length;
                            _active = active;
                            buffer.SetLength(0);
                            buffer.Write(line, 0, line.Length);
                            lineStart = 0;
                            bodyEnd = lineLength - RecordCodec.TrailerLength - 1;
                        }

                        byte[] eventBytes = new byte[bodyEnd - lineStart + 1];
                        Buffer.BlockCopy(buffer.GetBuffer(), lineStart, eventBytes, 0, eventBytes.Length - 1);
                        eventBytes[eventBytes.Length - 1] = (byte)'}';
                        pending.Add(new EventRecord(seq, p.Id, timestamp, p.Type, p.Source, p.CorrelationId, eventBytes, prefixLength + p.DataOffset, p.DataLength));
                    }

                    WriteDurably(active, buffer, timestamp);
                    Acknowledge(pending, results, acknowledged);
                    ArrayPool<byte>.Shared.Return(rented); // not reached on an exception: the array is then just left to the GC
                }
            }

            return results;
        }

        private const int MaxTimestampLength = 48; // "o" is 33 (2026-11-22T02:17:49.1234567+00:00); slack costs nothing
        private const int MaxSeqDigits = 20; // long.MinValue as text (seqs are positive: 19 at most)
        private static readonly byte[] SeqPrefix = Encoding.ASCII.GetBytes("{\"seq\":");
        private static readonly byte[] IdPrefix = Encoding.ASCII.GetBytes(",\"id\":\"");
        private static readonly byte[] TimestampPrefix = Encoding.ASCII.GetBytes("\",\"timestamp\":\"");

        private static int MaxPrefixLength(string id) => SeqPrefix.Length + MaxSeqDigits + IdPrefix.Length + id.Length + TimestampPrefix.Length + MaxTimestampLength + 1;

        /// <summary>
        /// The buffer a batch is assembled in, big enough for every record (an upper bound: longest prefix + tail +
        /// trailer + newline), on an array from the shared pool. Before, a MemoryStream sized at 256 bytes an event
        /// doubled once per call for ~300-byte records (copying the whole batch), and every call left megabytes of
        /// arrays on the large object heap, which made nearly every GC a full one. The stream cannot grow, and never
        /// needs to; records keep their own copies (eventBytes), so nothing refers to the array once it is returned.
        /// </summary>
        private static MemoryStream RentBatchBuffer(List<PreparedEvent> prepared, out byte[] rented)
        {
            long capacity = 0;
            foreach (var p in prepared)
            {
                capacity += MaxPrefixLength(p.Id) + p.Tail.Length + RecordCodec.TrailerLength + 1;
            }

            rented = ArrayPool<byte>.Shared.Rent((int)Math.Min(capacity, int.MaxValue));
            var buffer = new MemoryStream(rented, 0, rented.Length, writable: true, publiclyVisible: true);
            buffer.SetLength(0);
            return buffer;
        }

        private static void Acknowledge(List<EventRecord> pending, List<EventRecord> results, Action<EventRecord>? acknowledged)
        {
            foreach (var r in pending)
            {
                results.Add(r);
                acknowledged?.Invoke(r);
            }

            pending.Clear();
        }

        internal static int WritePrefix(MemoryStream buffer, long seq, string id, string timestamp)
        {
            // {"seq":N,"id":"…","timestamp":"…"   (id and timestamp are ASCII with nothing to escape)
            // Written straight into the buffer, byte for byte what Encoding.ASCII gives for the concatenated
            // text, without a string and a byte[] per record.
            int start = (int)buffer.Length;
            buffer.SetLength(start + SeqPrefix.Length + MaxSeqDigits + IdPrefix.Length + id.Length + TimestampPrefix.Length + timestamp.Length + 1);
            byte[] b = buffer.GetBuffer();
            int at = start;
            Buffer.BlockCopy(SeqPrefix, 0, b, at, SeqPrefix.Length);
            at += SeqPrefix.Length;
            at += WriteDigits(b, at, seq);
            Buffer.BlockCopy(IdPrefix, 0, b, at, IdPrefix.Length);
            at += IdPrefix.Length;
            at = WriteAscii(b, at, id);
            Buffer.BlockCopy(TimestampPrefix, 0, b, at, TimestampPrefix.Length);
            at += TimestampPrefix.Length;
            at = WriteAscii(b, at, timestamp);
            b[at++] = (byte)'"';
            buffer.SetLength(at);
            buffer.Position = at;
            return at - start;
        }

        private static int WriteAscii(byte[] b, int at, string text)
        {
            foreach (char c in text)
            {
                b[at++] = c < 0x80 ? (byte)c : (byte)'?'; // Encoding.ASCII's replacement (ids are validated ASCII anyway)
            }

            return at;
        }

        /// <summary>The decimal digits of <paramref name="value"/>, as ToString(InvariantCulture) writes them.</summary>
        private static int WriteDigits(byte[] b, int at, long value)
        {
            if (value < 0)
            {
                byte[] text = Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture));
                Buffer.BlockCopy(text, 0, b, at, text.Length);
                return text.Length;
            }

            int digits = 1;
            for (long v = value / 10; v > 0; v /= 10)
            {
                digits++;
            }

            for (int i = digits - 1; i >= 0; i--)
            {
                b[at + i] = (byte)('0' + (value % 10));
                value /= 10;
            }

            return digits;
        }

        /// <summary>
        /// Appends the buffered records at the valid end and fsyncs. If either fails (disk full, I/O error)
        /// the segment is cut back to where it was, so the log stays valid and nothing half-written remains;
        /// the events are not acknowledged.
        /// </summary>
        private void WriteDurably(ActiveSegment active, MemoryStream buffer, DateTimeOffset timestamp)
        {
            var stream = active.Stream!;
            try
            {
                stream.Position = active.ValidEnd;
                stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                // The acknowledgement promise: nothing is acknowledged before this fsync returns.
                _io.Sync(stream);
            }
            catch (IOException ex)
            {
                try
                {
                    _io.SetLength(stream, active.ValidEnd);
                    _io.Sync(stream); // make the rollback durable, or the next open sees a torn tail (also safe)
                }
                catch (IOException)
                {
                    // The next writer (or open) finds the torn tail and quarantines it.
                }

                CloseActive();
                throw MapIOException(ex, $"Cannot append to '{active.Path}'", active.Path);
            }

            active.ValidEnd += buffer.Length;
            active.LastSeq += CountLines(buffer);
            // The next publish through this (cached) view must not stamp an earlier time if the clock steps back.
            active.LastTimestamp = timestamp;
        }

        private static int CountLines(MemoryStream buffer)
        {
            // IndexOf is vectorized; a byte-by-byte loop over a 3 MB batch was ~4% of a batch publish.
            int count = 0;
            var rest = new ReadOnlySpan<byte>(buffer.GetBuffer(), 0, (int)buffer.Length);
            int i;
            while ((i = rest.IndexOf((byte)'\n')) >= 0)
            {
                count++;
                rest = rest.Slice(i + 1);
            }

            return count;
        }

        internal static BmadGuardException MapIOException(IOException ex, string what, string? path)
            => StoreFs.MapIOException(ex, what, path, "No event that was not acknowledged was written (the segment was cut back); free some space and publish again.");

        // ------------------------------------------------------------------ read

        /// <summary>A reader's place in the log.</summary>
        private sealed class ReadCursor
        {
            /// <summary>The first seq to hand out; records before it are read (and checked) but skipped.</summary>
            public long DeliverFrom { get; set; } = 1;

            /// <summary>The seq the next line in the current segment must carry.</summary>
            public long ExpectSeq { get; set; } = 1;

            public string? SegmentPath { get; set; }
            public long SegmentFirstSeq { get; set; }
            public long Offset { get; set; }

            /// <summary>Damage at the end of the log already reported to this reader (a follower meets it at every poll).</summary>
            public string? ReportedPath { get; set; }
            public long ReportedOffset { get; set; } = -1;
            /// <summary>The writer epoch when the current segment was opened (null: unknown).</summary>
            public long? Epoch { get; set; }
        }

        public IEnumerable<EventRecord> Read(EventQuery query, CancellationToken cancellationToken = default)
            => ReadCore(query, follow: false, TimeSpan.Zero, cancellationToken);

        public IEnumerable<EventRecord> Follow(EventQuery query, TimeSpan pollInterval, CancellationToken cancellationToken)
            => ReadCore(query, follow: true, pollInterval, cancellationToken);

        private IEnumerable<EventRecord> ReadCore(EventQuery query, bool follow, TimeSpan pollInterval, CancellationToken cancellationToken)
        {
            ThrowIfDisposed();
            if (query.Last.HasValue && query.Last.Value < 0)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "-Last must be 0 or more.");
            }

            ValidateConsumerQuery(query);
            string? consumer = query.Consumer == null ? null : ConsumerKey(query.Consumer, query.Type, query.Source);
            long after = Math.Max(0, query.After ?? 0);
            if (consumer != null)
            {
                after = Math.Max(after, GetConsumerPosition(consumer));
            }

            var typeFilter = string.IsNullOrEmpty(query.Type) ? null : new Wildcard(query.Type!);
            var sourceFilter = string.IsNullOrEmpty(query.Source) ? null : new Wildcard(query.Source!);
            bool Matches(EventRecord r) => (typeFilter == null || typeFilter.IsMatch(r.Type))
                                           && (sourceFilter == null || sourceFilter.IsMatch(r.Source))
                                           && (!query.Since.HasValue || r.Timestamp >= query.Since.Value);

            // Damaged records: reported through query.OnDamage after the events before them (with -Last, after the
            // window); a plain read goes on past them, a consumer's read ends there so its position never passes them.
            var heldBack = query.Last.HasValue ? new List<BmadGuardException>() : null;
            bool stoppedAtDamage = false;
            Func<DamagedRun, bool>? onDamage = null;
            if (query.OnDamage != null)
            {
                onDamage = run =>
                {
                    var ex = run.ToException(consumer != null);
                    if (heldBack != null)
                    {
                        heldBack.Add(ex);
                    }
                    else
                    {
                        query.OnDamage(ex);
                    }

                    stoppedAtDamage = consumer != null;
                    return !stoppedAtDamage;
                };
            }

            var cursor = new ReadCursor { DeliverFrom = after + 1 };
            long delivered = after;
            try
            {
                if (query.Last.HasValue)
                {
                    var window = new Queue<EventRecord>();
                    foreach (var r in ReadAcrossSwaps(cursor, cancellationToken, onDamage))
                    {
                        if (Matches(r))
                        {
                            window.Enqueue(r);
                            if (window.Count > query.Last.Value)
                            {
                                window.Dequeue();
                            }
                        }
                    }

                    foreach (var r in window)
                    {
                        yield return r;
                    }

                    foreach (var ex in heldBack!)
                    {
                        query.OnDamage!(ex);
                    }

                    heldBack = null;
                }
                else
                {
                    foreach (var r in ReadAcrossSwaps(cursor, cancellationToken, onDamage))
                    {
                        delivered = r.Seq; // taken once handed over: a pipeline stopped by Select-Object -First N has the Nth
                        if (Matches(r))
                        {
                            yield return r;
                        }
                    }
                }

                while (follow && !stoppedAtDamage && !cancellationToken.IsCancellationRequested)
                {
                    if (consumer != null && delivered > after)
                    {
                        CommitConsumer(consumer, delivered);
                        after = delivered;
                    }

                    if (cancellationToken.WaitHandle.WaitOne(pollInterval))
                    {
                        break;
                    }

                    foreach (var r in ReadAcrossSwaps(cursor, cancellationToken, onDamage))
                    {
                        delivered = r.Seq; // taken once handed over (see above)
                        if (Matches(r))
                        {
                            yield return r;
                        }
                    }
                }
            }
            finally
            {
                if (consumer != null && delivered > after)
                {
                    CommitConsumer(consumer, delivered);
                }
            }
        }

        /// <summary>
        /// The combinations a consumer cannot honour without skipping events: -Last (the events before the window
        /// would be passed over). Type and source filters are honoured by a position per filter (see <see cref="ConsumerKey"/>).
        /// </summary>
        public static void ValidateConsumerQuery(EventQuery query)
        {
            if (query.Consumer != null && query.Last.HasValue)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"--last (-Last) cannot be used with a consumer ('{query.Consumer}'): a consumer receives every event it has not read yet, in order, " +
                    "and the events before the last N would be passed over. Read the last N without the consumer.");
            }
        }

        /// <summary>
        /// Where a consumer's position is kept. Unfiltered, it is the consumer's own name. With a type or source
        /// filter the position belongs to the pair (consumer, filter): <c>&lt;consumer&gt;.filter-&lt;8 hex&gt;</c>, the hex
        /// from the SHA-256 of the filter (case-insensitive, as the filter matches). So a consumer reading
        /// <c>story.*</c> and the same consumer reading everything never move each other past events one of them
        /// did not return.
        /// </summary>
        public static string ConsumerKey(string consumer, string? type, string? source)
        {
            ValidateConsumerName(consumer);
            if (string.IsNullOrEmpty(type) && string.IsNullOrEmpty(source))
            {
                return consumer;
            }

            static string Hash8(string text)
            {
                using var sha = System.Security.Cryptography.SHA256.Create();
                byte[] h = sha.ComputeHash(Encoding.UTF8.GetBytes(text));
                return h[0].ToString("x2", CultureInfo.InvariantCulture) + h[1].ToString("x2", CultureInfo.InvariantCulture)
                       + h[2].ToString("x2", CultureInfo.InvariantCulture) + h[3].ToString("x2", CultureInfo.InvariantCulture);
            }

            string prefix = consumer.Length <= 48 ? consumer : consumer.Substring(0, 39) + "." + Hash8(consumer);
            return prefix + ".filter-" + Hash8("type=" + (type ?? "").ToLowerInvariant() + "\nsource=" + (source ?? "").ToLowerInvariant());
        }

        /// <summary>Records a reader could not read: seqs FirstSeq..LastSeq, starting at Offset of Path.</summary>
        private sealed class DamagedRun
        {
            public DamagedRun(long firstSeq, long lastSeq, string path, long offset, string what)
            {
                FirstSeq = firstSeq;
                LastSeq = lastSeq;
                Path = path;
                Offset = offset;
                What = what;
            }

            public long FirstSeq { get; set; }
            public long LastSeq { get; }
            public string Path { get; }
            public long Offset { get; }
            public string What { get; }

            public BmadGuardException ToException(bool consumerStopped)
            {
                string seqs = FirstSeq == LastSeq
                    ? "seq " + FirstSeq.ToString(CultureInfo.InvariantCulture)
                    : $"seqs {FirstSeq.ToString(CultureInfo.InvariantCulture)}..{LastSeq.ToString(CultureInfo.InvariantCulture)}";
                string then = consumerStopped
                    ? $"The events before it were delivered; the consumer's position stays before {seqs}, so nothing is skipped."
                    : "The intact events before and after it were delivered.";
                return new BmadGuardException(ErrorCodes.DamagedRecord, FailureKind.StoreProblem,
                    $"The store is damaged: {seqs} cannot be read ('{Path}' at byte {Offset}: {What}). {then}", Path, Offset);
            }
        }

        /// <see cref="ReadAvailable"/>, re-positioned by seq when the log's files were swapped under the cursor. A restore
        /// or repair bumps the writer epoch before (restore) or while (repair) it replaces segment files, and seqs are never
        /// reused, so the same seq still names the same place in the new files: the cursor drops its file and offset and
        /// finds the next seq it has not handed out in the new set. An error met while the epoch changed, or after the
        /// cursor's file vanished, is that swap seen half-way, not damage: it is retried the same way (bounded).
        /// </summary>
        private IEnumerable<EventRecord> ReadAcrossSwaps(ReadCursor cursor, CancellationToken cancellationToken, Func<DamagedRun, bool>? onDamage)
        {
            for (int attempt = 0; ; attempt++)
            {
                long? epoch = StoreLock.PeekEpoch(LockPath);
                if (cursor.SegmentPath != null && epoch != cursor.Epoch)
                {
                    Reposition(cursor);
                }

                cursor.Epoch = epoch;
                bool swapped = false;
                // Damage met while the files are being swapped is the swap seen half-way, not damage to report to the
                // reader (who would be told of seqs that are fine, and a plain read would go on past them): it is
                // raised here as StoreDamaged so the catch below retries by seq, like an unhandled read.
                int tries = attempt;
                Func<DamagedRun, bool>? report = onDamage == null ? null : run =>
                    tries < 10 && SwapSeen(cursor)
                        ? throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem, "the segment set changed while it was read", run.Path, run.Offset)
                        : onDamage(run);
                using (var e = ReadAvailable(cursor, cancellationToken, report).GetEnumerator())
                {
                    while (true)
                    {
                        EventRecord? record = null;
                        try
                        {
                            if (e.MoveNext())
                            {
                                record = e.Current;
                            }
                        }
                        catch (BmadGuardException ex) when (ex.Code == ErrorCodes.StoreDamaged && attempt < 10 && SwapSeen(cursor))
                        {
                            swapped = true;
                        }

                        if (record == null)
                        {
                            break;
                        }

                        yield return record;
                    }
                }

                if (!swapped)
                {
                    yield break;
                }

                Reposition(cursor);
                cursor.Epoch = null; // read the epoch again on the next attempt
            }
        }

        /// <summary>The writer epoch moved since the cursor opened its file, or that file is gone: a restore or repair swapped the set.</summary>
        private bool SwapSeen(ReadCursor cursor)
            => StoreLock.PeekEpoch(LockPath) != cursor.Epoch || (cursor.SegmentPath != null && !File.Exists(cursor.SegmentPath));

        /// <summary>Forget the file and offset; the next read finds the first seq not yet handed out by seq.</summary>
        private static void Reposition(ReadCursor cursor)
        {
            if (cursor.SegmentPath != null)
            {
                cursor.DeliverFrom = Math.Max(cursor.DeliverFrom, cursor.ExpectSeq);
            }

            cursor.SegmentPath = null;
        }

        /// <summary>
        /// Reads every complete record from the cursor on, checking checksums and seq continuity, and moves
        /// the cursor. Stops quietly at an incomplete or unchecked tail of the last segment (a writer may be
        /// appending, or a crash left a tail the next writer will cut); damage anywhere else is an error, or, with
        /// <paramref name="onDamage"/>, a run of unreadable records handed to it (the intact record after the run names
        /// where it ends): when it returns true the read goes on after the run, else it ends with the cursor before it.
        /// </summary>
        private IEnumerable<EventRecord> ReadAvailable(ReadCursor cursor, CancellationToken cancellationToken, Func<DamagedRun, bool>? onDamage = null)
        {
            var segments = SegmentNames.List(SegmentsDir);
            if (segments.Count == 0)
            {
                yield break;
            }

            int index;
            if (cursor.SegmentPath == null)
            {
                index = 0;
                for (int i = 0; i < segments.Count; i++)
                {
                    if (segments[i].FirstSeq <= cursor.DeliverFrom)
                    {
                        index = i;
                    }
                }

                if (segments[0].FirstSeq != 1)
                {
                    throw Damage(segments[0].Path, 0, $"the log starts at seq {segments[0].FirstSeq}, not 1: earlier segments are missing");
                }

                OpenSegmentCursor(cursor, segments[index].Path, segments[index].FirstSeq);
            }
            else
            {
                index = segments.FindIndex(s => s.FirstSeq == cursor.SegmentFirstSeq);
                if (index < 0)
                {
                    throw Damage(cursor.SegmentPath, 0, "the segment being read has disappeared");
                }
            }

            // A run wholly before what the reader asked for is not its business; one that reaches into it is named from there.
            bool Report(DamagedRun run)
            {
                if (run.LastSeq < cursor.DeliverFrom)
                {
                    return true;
                }

                run.FirstSeq = Math.Max(run.FirstSeq, cursor.DeliverFrom);
                return onDamage!(run);
            }

            // Bounded: bytes at one offset that keep changing under us (a restore replacing the file) end in an error.
            long retryOffset = -1;
            int retries = 0;
            while (true)
            {
                bool isLast = index == segments.Count - 1;
                bool retry = false;
                DamagedRun? skipping = null; // inside a run of damaged lines: its first seq, file and offset
                foreach (var line in SegmentReader.ReadLines(cursor.SegmentPath!, cursor.Offset))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    EventRecord? record = null;
                    if (line.Terminated && RecordCodec.ChecksumOk(line.Span) && !RecordCodec.IsHeader(line.Span))
                    {
                        record = RecordCodec.DecodeEvent(line.Span);
                    }

                    if (record == null && skipping != null)
                    {
                        continue; // more of the damaged run: read on to the next intact record
                    }

                    if (record == null)
                    {
                        // Look again from this offset: what we read may have been an append in flight (a writer
                        // holding the lock had written part of the record when our read reached the end of the
                        // file). Appends only ever extend the file, so one fresh pass is decisive.
                        var look = LookAgain(cursor.SegmentPath!, line.Offset);
                        if (look == SecondLook.NowComplete && (line.Offset != retryOffset || retries++ < 10))
                        {
                            if (line.Offset != retryOffset)
                            {
                                retryOffset = line.Offset;
                                retries = 0;
                            }

                            retry = true; // the writer finished the record: read on from the same offset
                            break;
                        }

                        if (isLast && look == SecondLook.TailOnly)
                        {
                            yield break; // an in-flight append or an unrepaired torn tail: not events yet
                        }

                        string what = line.Terminated ? "a record's checksum or format does not hold" : "a sealed segment ends in an incomplete record";
                        if (onDamage == null)
                        {
                            throw Damage(cursor.SegmentPath!, line.Offset, what);
                        }

                        skipping = new DamagedRun(cursor.ExpectSeq, -1, cursor.SegmentPath!, line.Offset, what);
                        continue;
                    }

                    if (skipping != null || record.Seq != cursor.ExpectSeq)
                    {
                        // The intact record after a damaged run (or after a gap) says which seqs are missing. Going on
                        // past them is safe only forwards: a seq that goes back is not a run of lost records.
                        if (onDamage == null || record.Seq < cursor.ExpectSeq)
                        {
                            throw Damage(cursor.SegmentPath!, skipping?.Offset ?? line.Offset, skipping?.What ?? $"expected seq {cursor.ExpectSeq} but found {record.Seq}");
                        }

                        if (record.Seq > cursor.ExpectSeq)
                        {
                            var run = new DamagedRun(cursor.ExpectSeq, record.Seq - 1, cursor.SegmentPath!, skipping?.Offset ?? line.Offset,
                                skipping?.What ?? $"expected seq {cursor.ExpectSeq} but found {record.Seq}");
                            if (!Report(run))
                            {
                                yield break; // the cursor stays before the run
                            }
                        }

                        skipping = null; // (a damaged line that held no event: nothing is missing)
                        cursor.ExpectSeq = record.Seq;
                    }

                    cursor.ExpectSeq++;
                    cursor.Offset = line.End;
                    if (record.Seq >= cursor.DeliverFrom)
                    {
                        yield return record;
                    }
                }

                if (retry)
                {
                    continue;
                }

                if (skipping != null && isLast)
                {
                    // Damage at the end of the log: nothing intact follows it (writers refuse to append after it).
                    // Named once per reader (a follower polls here again), and the read ends before it.
                    if (cursor.ReportedOffset != skipping.Offset || cursor.ReportedPath != skipping.Path)
                    {
                        cursor.ReportedPath = skipping.Path;
                        cursor.ReportedOffset = skipping.Offset;
                        Report(new DamagedRun(cursor.ExpectSeq, cursor.ExpectSeq, skipping.Path, skipping.Offset, skipping.What + "; nothing intact follows it"));
                    }

                    yield break;
                }

                if (isLast)
                {
                    // The log may have rolled over while we read.
                    segments = SegmentNames.List(SegmentsDir);
                    isLast = index == segments.Count - 1;
                    if (isLast)
                    {
                        yield break;
                    }

                    continue; // finish this segment (it may have grown before it was sealed), then move on
                }

                var next = segments[index + 1];
                if (skipping != null || next.FirstSeq != cursor.ExpectSeq)
                {
                    // A sealed segment that ends in damage, or one that ends short of the next: the next segment's
                    // first seq says which seqs are missing.
                    string what = skipping?.What ?? $"the segment starts at seq {next.FirstSeq} but the previous one ends at seq {cursor.ExpectSeq - 1}";
                    if (onDamage == null || next.FirstSeq < cursor.ExpectSeq)
                    {
                        throw skipping != null ? Damage(skipping.Path, skipping.Offset, what) : Damage(next.Path, 0, what);
                    }

                    if (next.FirstSeq > cursor.ExpectSeq
                        && !Report(new DamagedRun(cursor.ExpectSeq, next.FirstSeq - 1, skipping?.Path ?? next.Path, skipping?.Offset ?? 0, what)))
                    {
                        yield break;
                    }
                }

                index++;
                OpenSegmentCursor(cursor, next.Path, next.FirstSeq);
            }
        }

        private static void OpenSegmentCursor(ReadCursor cursor, string path, long firstSeq)
        {
            var (headerFirst, recordsStart) = SegmentReader.ReadHeader(path);
            if (headerFirst != firstSeq)
            {
                throw Damage(path, 0, $"its header says it starts at seq {headerFirst} but its name says {firstSeq}");
            }

            cursor.SegmentPath = path;
            cursor.SegmentFirstSeq = firstSeq;
            cursor.Offset = recordsStart;
            cursor.ExpectSeq = firstSeq;
        }

        internal enum SecondLook
        {
            /// <summary>The record at the offset is now complete and checksummed: the first read saw an append in flight.</summary>
            NowComplete,

            /// <summary>Nothing valid from the offset to the end of the file: an append in flight or a torn tail.</summary>
            TailOnly,

            /// <summary>The bytes at the offset are still bad and a valid record follows them: damage.</summary>
            Damaged,
        }

        /// <summary>Test hook: runs when a read meets bytes that are not a valid record, before the second look.</summary>
        internal static Action<string, long>? BeforeSecondLookForTests;

        /// <summary>
        /// A second, fresh pass from <paramref name="offset"/> after a read met bytes that are not a complete record.
        /// The first line decides whether it was an append in flight; only bytes that are still bad, with a valid
        /// record after them, are damage.
        /// </summary>
        internal static SecondLook LookAgain(string path, long offset)
        {
            BeforeSecondLookForTests?.Invoke(path, offset);
            bool first = true;
            foreach (var line in SegmentReader.ReadLines(path, offset))
            {
                bool valid = line.Terminated && RecordCodec.ChecksumOk(line.Span) && !RecordCodec.IsHeader(line.Span);
                if (first && valid)
                {
                    return SecondLook.NowComplete;
                }

                if (!valid && line.Terminated && RecordCodec.HasRecordShape(line.Span))
                {
                    return SecondLook.Damaged; // a complete record whose bytes changed: never an append in flight
                }

                if (valid)
                {
                    return SecondLook.Damaged;
                }

                first = false;
            }

            return SecondLook.TailOnly;
        }

        internal static BmadGuardException Damage(string path, long offset, string what)
            => new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                $"The store is damaged: '{path}' at byte {offset}: {what}.",
                path, offset);

        // ------------------------------------------------------------------ statistics

        public StoreStatistics GetStatistics(CancellationToken cancellationToken = default)
        {
            ThrowIfDisposed();
            var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var bySource = new SortedDictionary<string, long>(StringComparer.Ordinal);
            long total = 0;
            long? first = null, last = null;
            DateTimeOffset? firstTs = null, lastTs = null;
            foreach (var r in ReadAvailable(new ReadCursor(), cancellationToken))
            {
                total++;
                first ??= r.Seq;
                firstTs ??= r.Timestamp;
                last = r.Seq;
                lastTs = r.Timestamp;
                byType.TryGetValue(r.Type, out long t);
                byType[r.Type] = t + 1;
                bySource.TryGetValue(r.Source, out long s);
                bySource[r.Source] = s + 1;
            }

            var segments = SegmentNames.List(SegmentsDir);
            long segmentBytes = 0;
            foreach (var s in segments)
            {
                segmentBytes += new FileInfo(s.Path).Length;
            }

            long bytesOnDisk = 0;
            foreach (string f in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories))
            {
                try
                {
                    bytesOnDisk += new FileInfo(f).Length;
                }
                catch (IOException)
                {
                }
            }

            int quarantined = Directory.Exists(QuarantineDir) ? Directory.GetFiles(QuarantineDir).Length : 0;
            return new StoreStatistics(Root, total, first, last, firstTs, lastTs, byType, bySource, segments.Count, segmentBytes, bytesOnDisk, quarantined);
        }

        // ------------------------------------------------------------------ consumers

        public static void ValidateConsumerName(string consumer)
        {
            if (consumer == null || !ConsumerNameRegex.IsMatch(consumer))
            {
                throw new BmadGuardException(ErrorCodes.InvalidConsumerName, FailureKind.InvalidInput,
                    $"Consumer name '{consumer}' is not valid: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.");
            }
        }

        private string ConsumerPath(string consumer) => Path.Combine(ConsumersDir, consumer + ".json");

        public long GetConsumerPosition(string consumer)
        {
            ValidateConsumerName(consumer);
            string path = ConsumerPath(consumer);
            if (!File.Exists(path))
            {
                return 0;
            }

            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                return doc.RootElement.GetProperty("seq").GetInt64();
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"Consumer position file '{path}' is damaged: {ex.Message}. Delete it to read from the start, or write {{\"seq\":N}} to resume after seq N.", path, inner: ex);
            }
        }

        public void CommitConsumer(string consumer, long seq)
        {
            ValidateConsumerName(consumer);
            if (!Directory.Exists(ConsumersDir))
            {
                _io.CreateDirectory(ConsumersDir);
                _io.SyncDirectory(Root); // a new consumers/ must survive a crash, or the position committed inside it is lost
            }

            StoreFs.CheckInside(Root, ConsumersDir); // the lock below is created in consumers/: never through a link
            using (StoreLock.Acquire(Path.Combine(ConsumersDir, consumer + ".lock"), _options.LockTimeout))
            {
                if (GetConsumerPosition(consumer) >= seq)
                {
                    return;
                }

                var buffer = new MemoryStream();
                using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                {
                    string updated = DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture);
                    w.WriteStartObject();
                    w.WriteString("consumer", consumer);
                    w.WriteNumber("seq", seq);
                    w.WriteString("updated", updated);
                    // Lets Test-BmadIntegrity detect a flipped digit (see MetadataChecksum); readers ignore it.
                    w.WriteString(MetadataChecksum.PropertyName, MetadataChecksum.Consumer(consumer, seq.ToString(CultureInfo.InvariantCulture), updated));
                    w.WriteEndObject();
                }

                buffer.WriteByte((byte)'\n');
                AtomicFile.Write(_io, ConsumerPath(consumer), buffer.ToArray());
            }
        }

        // ------------------------------------------------------------------ lifetime

        private void ThrowIfDisposed()
        {
            if (_disposed)
            {
                throw new ObjectDisposedException(nameof(FileEventStore));
            }
        }

        public void Dispose()
        {
            lock (_writeGate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
                CloseActive();
            }
        }
    }
}
