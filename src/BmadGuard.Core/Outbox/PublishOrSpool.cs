using System;
using System.Collections.Generic;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Outbox
{
    public enum PublishStatus
    {
        /// <summary>In the store, durable (fsynced).</summary>
        Published,
        /// <summary>In the outbox, durable (fsynced); the monitor replays it into the store once it accepts again.</summary>
        Spooled,
    }

    /// <summary>What happened to a publish-or-spool call.</summary>
    public sealed class PublishOrSpoolResult
    {
        public PublishOrSpoolResult(PublishStatus status, IReadOnlyList<EventRecord> published, IReadOnlyList<SpooledEvent> spooled, string? reasonCode, string? reason)
        {
            Status = status;
            Published = published;
            Spooled = spooled;
            ReasonCode = reasonCode;
            Reason = reason;
        }

        public PublishStatus Status { get; }
        public IReadOnlyList<EventRecord> Published { get; }
        public IReadOnlyList<SpooledEvent> Spooled { get; }

        /// <summary>Why the store refused (LockTimeout, StoreFull, StoreDamaged), when spooled.</summary>
        public string? ReasonCode { get; }
        public string? Reason { get; }
    }

    /// <summary>
    /// Publish, or when the store cannot take the events right now, spool them to the outbox. The one call the
    /// CLI (<c>bmadguard publish --spool</c>) and the cmdlets make.
    /// </summary>
    public static class PublishOrSpool
    {
        /// <summary>Store refusals after which nothing was written, so spooling cannot duplicate anything.</summary>
        public static bool IsSpoolable(BmadGuardException ex)
            => ex.Code == ErrorCodes.LockTimeout || ex.Code == ErrorCodes.StoreFull || ex.Code == ErrorCodes.StoreDamaged;

        /// <summary>
        /// Invalid events throw (nothing published or spooled). When the outbox already holds events, they are
        /// replayed first, and if that fails the new events are spooled behind them: the caller's order is kept.
        /// A missing store throws (the outbox lives inside the store directory).
        /// </summary>
        public static PublishOrSpoolResult Run(string storePath, IReadOnlyList<EventDraft> drafts, StoreOpenOptions? options = null, long reserveBytes = EventOutbox.DefaultReserveBytes, CancellationToken cancellationToken = default)
        {
            storePath = System.IO.Path.GetFullPath(storePath);
            if (!StorePaths.IsStore(storePath))
            {
                // Let Open produce its clear StoreNotFound message.
                FileEventStore.Open(storePath, options).Dispose();
            }

            var outbox = new EventOutbox(storePath, reserveBytes);
            FileEventStore? store = null;
            BmadGuardException? refusal = null;
            try
            {
                try
                {
                    store = FileEventStore.Open(storePath, options);
                }
                catch (BmadGuardException ex) when (IsSpoolable(ex))
                {
                    refusal = ex;
                }

                if (store != null && outbox.HasPending())
                {
                    var replay = outbox.Replay(store, cancellationToken);
                    if (replay.Pending > 0)
                    {
                        refusal = replay.Refusal ?? new BmadGuardException(ErrorCodes.OutboxPending, FailureKind.StoreProblem,
                            "Earlier spooled events are still waiting in the outbox; these were spooled behind them to keep their order.");
                    }
                }

                if (store != null && refusal == null)
                {
                    try
                    {
                        var records = store.Publish(drafts, null, cancellationToken);
                        return new PublishOrSpoolResult(PublishStatus.Published, records, Array.Empty<SpooledEvent>(), null, null);
                    }
                    catch (BmadGuardException ex) when (IsSpoolable(ex))
                    {
                        refusal = ex;
                    }
                }

                var limits = store?.Limits ?? EventLimits.Default;
                var spooled = outbox.Spool(drafts, limits, cancellationToken);
                return new PublishOrSpoolResult(PublishStatus.Spooled, Array.Empty<EventRecord>(), spooled, refusal!.Code, refusal.Message);
            }
            finally
            {
                store?.Dispose();
            }
        }
    }
}
