using System.Collections.Generic;

namespace BmadGuard.Core.Events
{
    /// <summary>
    /// What <see cref="Storage.IEventStore.PublishEach"/> did with a batch whose items may be bad: the batch
    /// contract that <c>bmadguard publish --stdin</c> (a line each) and Publish-BmadEvent's pipeline (an object each)
    /// both render. Every good item was appended and acknowledged (fsynced), in input order; every rejected item was
    /// written nowhere.
    /// </summary>
    public sealed class BatchPublishResult
    {
        public BatchPublishResult(IReadOnlyList<EventRecord> published, IReadOnlyList<RejectedDraft> rejected)
        {
            Published = published;
            Rejected = rejected;
        }

        /// <summary>The acknowledged events, in input (and seq) order.</summary>
        public IReadOnlyList<EventRecord> Published { get; }

        /// <summary>The items refused as bad input, in input order.</summary>
        public IReadOnlyList<RejectedDraft> Rejected { get; }
    }

    /// <summary>One item of a batch refused as bad input (<see cref="FailureKind.InvalidInput"/>): nothing of it was written.</summary>
    public sealed class RejectedDraft
    {
        public RejectedDraft(int index, BmadGuardException error)
        {
            Index = index;
            Error = error;
        }

        /// <summary>The item's position in the batch handed in (0-based).</summary>
        public int Index { get; }

        public BmadGuardException Error { get; }
    }
}
