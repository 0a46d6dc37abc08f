using System;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Linq;
using BmadGuard.Core.Storage;

namespace BmadGuard
{
    /// <summary>What a store holds, as Get-BmadStoreStatistics reports it.</summary>
    public sealed class BmadStoreStatistics
    {
        internal BmadStoreStatistics(string store, long totalEvents, long? firstSeq, long? lastSeq, DateTimeOffset? firstTimestamp,
            DateTimeOffset? lastTimestamp, OrderedDictionary byType, OrderedDictionary bySource, int segments, long segmentBytes,
            long bytesOnDisk, int quarantineFiles)
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

        /// <summary>The store directory.</summary>
        public string Store { get; }

        /// <summary>How many events the store holds.</summary>
        public long TotalEvents { get; }

        /// <summary>The first event's seq; null for an empty store.</summary>
        public long? FirstSeq { get; }

        /// <summary>The last event's seq; null for an empty store.</summary>
        public long? LastSeq { get; }

        /// <summary>When the first event was accepted; null for an empty store.</summary>
        public DateTimeOffset? FirstTimestamp { get; }

        /// <summary>When the last event was accepted; null for an empty store.</summary>
        public DateTimeOffset? LastTimestamp { get; }

        /// <summary>Event count per type (type → Int64), most frequent first.</summary>
        public OrderedDictionary ByType { get; }

        /// <summary>Event count per source (source → Int64), most frequent first.</summary>
        public OrderedDictionary BySource { get; }

        /// <summary>How many segment files the log has.</summary>
        public int Segments { get; }

        /// <summary>The size of the segment files, in bytes.</summary>
        public long SegmentBytes { get; }

        /// <summary>The size of everything in the store directory, in bytes.</summary>
        public long BytesOnDisk { get; }

        /// <summary>How many files are in quarantine/ (cut torn tails, kept for inspection).</summary>
        public int QuarantineFiles { get; }

        internal static BmadStoreStatistics FromStatistics(StoreStatistics s)
            => new BmadStoreStatistics(s.Store, s.TotalEvents, s.FirstSeq, s.LastSeq, s.FirstTimestamp, s.LastTimestamp,
                Counts(s.ByType), Counts(s.BySource), s.Segments, s.SegmentBytes, s.BytesOnDisk, s.QuarantineFiles);

        /// <summary>Counts as an ordered hashtable: highest count first, then by name (ordinal).</summary>
        internal static OrderedDictionary Counts(IEnumerable<KeyValuePair<string, long>> counts)
        {
            var result = new OrderedDictionary(StringComparer.Ordinal);
            foreach (var pair in counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal))
            {
                result[pair.Key] = pair.Value;
            }

            return result;
        }
    }
}
