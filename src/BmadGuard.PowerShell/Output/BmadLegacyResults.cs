using System.Linq;
using BmadGuard.Core.Legacy;

namespace BmadGuard
{
    /// <summary>A legacy event Import-BmadLegacyBus did not write, and why (none is dropped silently).</summary>
    public sealed class BmadLegacySkippedEvent
    {
        private BmadLegacySkippedEvent(int index, long offset, string reason)
        {
            Index = index;
            Offset = offset;
            Reason = reason;
        }

        /// <summary>The event's position in the file's events array (from 0).</summary>
        public int Index { get; }

        /// <summary>The byte offset of the event in the file.</summary>
        public long Offset { get; }

        /// <summary>Why it was not imported.</summary>
        public string Reason { get; }

        public override string ToString() => $"#{Index} at byte {Offset}: {Reason}";

        internal static BmadLegacySkippedEvent FromSkipped(LegacySkipped s) => new BmadLegacySkippedEvent(s.Index, s.Offset, s.Reason);
    }

    /// <summary>What Import-BmadLegacyBus copied from a legacy bus file into a store.</summary>
    public sealed class BmadLegacyImportResult
    {
        private BmadLegacyImportResult(LegacyImportResult r)
        {
            File = r.File;
            Store = r.Store;
            EventsInFile = r.EventsInFile;
            Imported = r.Imported;
            AlreadyPresent = r.AlreadyPresent;
            TimestampsAdjusted = r.TimestampsAdjusted;
            DataWrapped = r.DataWrapped;
            Skipped = r.Skipped.Select(BmadLegacySkippedEvent.FromSkipped).ToArray();
            FirstSeq = r.FirstSeq;
            LastSeq = r.LastSeq;
            DamageOffset = r.DamageOffset;
        }

        /// <summary>The legacy bus file read (it is never changed by an import).</summary>
        public string File { get; }

        /// <summary>The store written to.</summary>
        public string Store { get; }

        /// <summary>Complete events read from the file (after salvage, when it is damaged).</summary>
        public int EventsInFile { get; }

        /// <summary>Events written to the store by this run.</summary>
        public int Imported { get; }

        /// <summary>Events an earlier import already wrote (same deterministic id): skipped, so a second run imports nothing.</summary>
        public int AlreadyPresent { get; }

        /// <summary>Imported events whose timestamp was raised to the log's last timestamp (the log never goes backwards in time).</summary>
        public int TimestampsAdjusted { get; }

        /// <summary>Imported events whose non-object data was wrapped as {"value": ...}.</summary>
        public int DataWrapped { get; }

        /// <summary>Events that could not be imported, each with the reason.</summary>
        public BmadLegacySkippedEvent[] Skipped { get; }

        /// <summary>The seq of the first event imported by this run; null when none was.</summary>
        public long? FirstSeq { get; }

        /// <summary>The seq of the last event imported by this run; null when none was.</summary>
        public long? LastSeq { get; }

        /// <summary>Where the file's damage starts (it was salvaged in memory); null for a valid file.</summary>
        public long? DamageOffset { get; }

        public override string ToString() => $"{File} -> {Store}: {Imported} imported, {AlreadyPresent} already present, {Skipped.Length} skipped";

        internal static BmadLegacyImportResult FromResult(LegacyImportResult r) => new BmadLegacyImportResult(r);
    }

    /// <summary>What Publish-BmadEvent -Path appended to a legacy bus file.</summary>
    public sealed class BmadLegacyPublishResult
    {
        private BmadLegacyPublishResult(LegacyPublishResult r)
        {
            Path = r.Path;
            Timestamp = r.Timestamp;
            Type = r.Event;
            DataJson = r.DataJson;
            EventCount = r.EventCount;
            GenerationPath = r.GenerationPath;
            RemovedGenerations = r.RemovedGenerations.ToArray();
            Created = r.Created;
        }

        /// <summary>The legacy bus file (full path).</summary>
        public string Path { get; }

        /// <summary>The event's timestamp as written: naive UTC with microseconds, like the Python agents' isoformat().</summary>
        public string Timestamp { get; }

        /// <summary>The event type (the legacy "event" field).</summary>
        public string Type { get; }

        /// <summary>The event's data as compact JSON.</summary>
        public string DataJson { get; }

        /// <summary>How many events the file holds after the publish.</summary>
        public int EventCount { get; }

        /// <summary>The backup generation of the previous contents, taken before the write (null when the file was created).</summary>
        public string? GenerationPath { get; }

        /// <summary>Old generations removed by the retention (-KeepGenerations).</summary>
        public string[] RemovedGenerations { get; }

        /// <summary>True when the file did not exist and was created.</summary>
        public bool Created { get; }

        public override string ToString() => $"{Path}: {Type} at {Timestamp} ({EventCount} events)";

        internal static BmadLegacyPublishResult FromResult(LegacyPublishResult r) => new BmadLegacyPublishResult(r);
    }

    /// <summary>What Export-BmadEvent wrote.</summary>
    public sealed class BmadExportResult
    {
        private BmadExportResult(string path, string format, long eventCount, long length)
        {
            Path = path;
            Format = format;
            EventCount = eventCount;
            Length = length;
        }

        /// <summary>The file written (atomically: it holds either the old or the whole new contents).</summary>
        public string Path { get; }

        /// <summary>Legacy or Ndjson.</summary>
        public string Format { get; }

        /// <summary>How many events were written.</summary>
        public long EventCount { get; }

        /// <summary>The file's size in bytes.</summary>
        public long Length { get; }

        public override string ToString() => $"{Path}: {EventCount} events ({Format})";

        internal static BmadExportResult Create(string path, string format, long eventCount)
            => new BmadExportResult(path, format, eventCount, System.IO.File.Exists(path) ? new System.IO.FileInfo(path).Length : 0);
    }
}
