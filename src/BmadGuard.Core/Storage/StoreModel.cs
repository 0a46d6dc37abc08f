using System;
using System.Collections.Generic;
using System.Text.RegularExpressions;

namespace BmadGuard.Core.Storage
{
    /// <summary>Settings fixed when a store is created (kept in bmadguard.store.json).</summary>
    public sealed class StoreSettings
    {
        public const long DefaultSegmentMaxBytes = 64L * 1024 * 1024;

        public long SegmentMaxBytes { get; set; } = DefaultSegmentMaxBytes;

        public int MaxEventBytes { get; set; } = Events.EventLimits.DefaultMaxEventBytes;

        public int MaxDepth { get; set; } = Events.EventLimits.DefaultMaxDepth;
    }

    /// <summary>How a process opens a store.</summary>
    public sealed class StoreOpenOptions
    {
        /// <summary>How long a publish waits for the writers' lock before failing with LockTimeout.</summary>
        public TimeSpan LockTimeout { get; set; } = StoreLock.DefaultTimeout;

        /// <summary>The write seam; tests replace it with a power-loss layer.</summary>
        public IStorageIO IO { get; set; } = OsStorageIO.Instance;
    }

    /// <summary>Something the store noticed and fixed or wants a person to know (torn tail cut, wide permissions).</summary>
    public sealed class StoreNotice
    {
        public StoreNotice(string code, string message, string? path = null, long? offset = null, string? quarantinePath = null, long bytes = 0)
        {
            Code = code;
            Message = message;
            Path = path;
            Offset = offset;
            QuarantinePath = quarantinePath;
            Bytes = bytes;
        }

        public string Code { get; }
        public string Message { get; }
        public string? Path { get; }
        public long? Offset { get; }
        public string? QuarantinePath { get; }
        public long Bytes { get; }

        public override string ToString() => Message;
    }

    /// <summary>Which events to read. Every filter is optional; they combine with AND.</summary>
    public sealed class EventQuery
    {
        /// <summary>Type, with wildcards * and ? (case-insensitive), e.g. <c>story.*</c>.</summary>
        public string? Type { get; set; }

        /// <summary>Source, with wildcards.</summary>
        public string? Source { get; set; }

        /// <summary>Only events with seq greater than this.</summary>
        public long? After { get; set; }

        /// <summary>Only events at or after this time.</summary>
        public DateTimeOffset? Since { get; set; }

        /// <summary>Only the last N matching events (not with Follow's live part).</summary>
        public int? Last { get; set; }

        /// <summary>
        /// A named consumer: only what it has not read yet; its position moves as events are delivered. With a
        /// <see cref="Type"/> or <see cref="Source"/> filter the position is the consumer's for that filter alone
        /// (see <see cref="FileEventStore.ConsumerKey"/>); <see cref="Last"/> cannot be combined with it.
        /// </summary>
        public string? Consumer { get; set; }

        /// <summary>
        /// Called for each run of records the reader could not read (code <c>DamagedRecord</c>, the message naming the
        /// seqs), after the events before it. Without a consumer the read then goes on with the intact events after
        /// the run; with a consumer it ends there (the position stays just before the run). Without this handler the
        /// first damaged record ends the read with a <c>StoreDamaged</c> exception, as before.
        /// </summary>
        public Action<BmadGuardException>? OnDamage { get; set; }
    }

    /// <summary>What a store holds.</summary>
    public sealed class StoreStatistics
    {
        public StoreStatistics(string store, long totalEvents, long? firstSeq, long? lastSeq, DateTimeOffset? firstTimestamp,
            DateTimeOffset? lastTimestamp, IReadOnlyDictionary<string, long> byType, IReadOnlyDictionary<string, long> bySource,
            int segments, long segmentBytes, long bytesOnDisk, int quarantineFiles)
        {
            Store = store;
            TotalEvents = totalEvents;
            FirstSeq = firstSeq;
            LastSeq = lastSeq;
            FirstTimestamp = firstTimestamp;
            LastTimestamp = lastTimestamp;
            ByType = byType;
            BySource = bySource;
            Segments = segments;
            SegmentBytes = segmentBytes;
            BytesOnDisk = bytesOnDisk;
            QuarantineFiles = quarantineFiles;
        }

        public string Store { get; }
        public long TotalEvents { get; }
        public long? FirstSeq { get; }
        public long? LastSeq { get; }
        public DateTimeOffset? FirstTimestamp { get; }
        public DateTimeOffset? LastTimestamp { get; }
        public IReadOnlyDictionary<string, long> ByType { get; }
        public IReadOnlyDictionary<string, long> BySource { get; }
        public int Segments { get; }
        public long SegmentBytes { get; }
        public long BytesOnDisk { get; }
        public int QuarantineFiles { get; }
    }

    /// <summary>PowerShell-style wildcards (* ? and [a-z]), case-insensitive.</summary>
    public sealed class Wildcard
    {
        private readonly Regex? _regex;
        private readonly string? _literal;

        public Wildcard(string pattern)
        {
            if (pattern.IndexOfAny(new[] { '*', '?', '[' }) < 0)
            {
                _literal = pattern;
                return;
            }

            var sb = new System.Text.StringBuilder("^");
            for (int i = 0; i < pattern.Length; i++)
            {
                char c = pattern[i];
                switch (c)
                {
                    case '*': sb.Append(".*"); break;
                    case '?': sb.Append('.'); break;
                    case '[':
                        int close = pattern.IndexOf(']', i + 1);
                        if (close > i + 1)
                        {
                            sb.Append('[').Append(pattern.Substring(i + 1, close - i - 1).Replace("\\", "\\\\")).Append(']');
                            i = close;
                        }
                        else
                        {
                            sb.Append("\\[");
                        }

                        break;
                    default: sb.Append(Regex.Escape(c.ToString())); break;
                }
            }

            sb.Append('$');
            _regex = new Regex(sb.ToString(), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline);
        }

        public bool IsMatch(string value) => _literal != null
            ? string.Equals(_literal, value, StringComparison.OrdinalIgnoreCase)
            : _regex!.IsMatch(value);
    }
}
