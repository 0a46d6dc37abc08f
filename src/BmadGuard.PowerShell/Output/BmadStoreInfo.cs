using System;

namespace BmadGuard
{
    /// <summary>A store New-BmadStore created or adopted.</summary>
    public sealed class BmadStoreInfo
    {
        internal BmadStoreInfo(string path, bool created, long segmentMaxBytes, int maxEventBytes, int maxDepth, string[] notices)
        {
            Path = path;
            Created = created;
            SegmentMaxBytes = segmentMaxBytes;
            MaxEventBytes = maxEventBytes;
            MaxDepth = maxDepth;
            Notices = notices;
        }

        /// <summary>The store directory (full provider path).</summary>
        public string Path { get; }

        /// <summary>True when this call created the store; false when a store was already there and was adopted.</summary>
        public bool Created { get; }

        /// <summary>The size at which the log rolls over to a new segment, in bytes.</summary>
        public long SegmentMaxBytes { get; }

        /// <summary>The largest event the store accepts, in bytes.</summary>
        public int MaxEventBytes { get; }

        /// <summary>The deepest nesting the store accepts in event data.</summary>
        public int MaxDepth { get; }

        /// <summary>What the store noticed while opening (a torn tail cut and quarantined, wide permissions).</summary>
        public string[] Notices { get; }

        public override string ToString() => Path;
    }
}
