using System;
using System.Collections.Generic;
using System.Threading;
using BmadGuard.Core.Events;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// What the cmdlets and the CLI need from a store. <see cref="FileEventStore"/> is the directory of
    /// segments; a PostgreSQL-backed store is planned behind the same interface.
    /// </summary>
    public interface IEventStore : IDisposable
    {
        /// <summary>Where the store is (a directory path, or a connection description).</summary>
        string Location { get; }

        /// <summary>What the store noticed while opening or writing: torn tails cut, wide permissions.</summary>
        IReadOnlyList<StoreNotice> Notices { get; }

        /// <summary>The limits every event is checked against.</summary>
        EventLimits Limits { get; }

        /// <summary>
        /// Validates and serializes every draft (throwing before anything is written if one is bad), then
        /// appends them under the writers' lock and fsyncs. Each event is passed to <paramref name="acknowledged"/>
        /// only after the fsync that covers it, in seq order; the returned list is every acknowledged event.
        /// </summary>
        IReadOnlyList<EventRecord> Publish(IReadOnlyList<EventDraft> drafts, Action<EventRecord>? acknowledged = null, CancellationToken cancellationToken = default);

        /// <summary>
        /// The batch contract for input that may hold bad items (a <c>--stdin</c> stream, a pipeline): each draft is
        /// validated and serialized on its own; a bad one is rejected (returned with its index, written nowhere) and
        /// the good ones are appended in order as one batch under one lock and one fsync. <paramref name="acknowledged"/>
        /// gets (index in <paramref name="drafts"/>, event) after the fsync that covers it. A store problem (lock
        /// timeout, disk full, damage) throws: what was acknowledged before it is durable, nothing after is written.
        /// </summary>
        BatchPublishResult PublishEach(IReadOnlyList<EventDraft> drafts, Action<int, EventRecord>? acknowledged = null, CancellationToken cancellationToken = default);

        /// <summary>Events matching the query, in seq order. With a consumer, its position moves past each event the caller has taken.</summary>
        IEnumerable<EventRecord> Read(EventQuery query, CancellationToken cancellationToken = default);

        /// <summary>Like Read, then keeps streaming new events until cancelled.</summary>
        IEnumerable<EventRecord> Follow(EventQuery query, TimeSpan pollInterval, CancellationToken cancellationToken);

        StoreStatistics GetStatistics(CancellationToken cancellationToken = default);

        /// <summary>The last seq a consumer has taken (0 when it has read nothing).</summary>
        long GetConsumerPosition(string consumer);

        /// <summary>Durably moves a consumer's position forward to <paramref name="seq"/> (never back).</summary>
        void CommitConsumer(string consumer, long seq);
    }
}
