namespace BmadGuard.Core.Events
{
    /// <summary>Limits applied to every event before anything is written.</summary>
    public sealed class EventLimits
    {
        public const int DefaultMaxEventBytes = 1024 * 1024;
        public const int DefaultMaxDepth = 64;

        public EventLimits(int maxEventBytes = DefaultMaxEventBytes, int maxDepth = DefaultMaxDepth)
        {
            MaxEventBytes = maxEventBytes;
            MaxDepth = maxDepth;
        }

        /// <summary>The largest record line (the whole event as stored, checksum included), in bytes.</summary>
        public int MaxEventBytes { get; }

        /// <summary>The deepest nesting of objects and arrays allowed in data (the data object itself is depth 1).</summary>
        public int MaxDepth { get; }

        public static EventLimits Default { get; } = new EventLimits();
    }
}
