using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// The default <see cref="IStoreHealer"/> until Repair-BmadStore and Restore-BmadStore are merged: it repairs
    /// exactly one kind of damage, a torn tail, with the store's own mechanism (<see cref="FileEventStore.Open"/>
    /// takes the writers' lock, copies the bad bytes to <c>quarantine/</c>, fsyncs, then truncates). Anything else
    /// is reported as NotPossible (repair would lose records), and restore as NotAvailable.
    /// </summary>
    public sealed class TornTailHealer : IStoreHealer
    {
        public static TornTailHealer Instance { get; } = new TornTailHealer();

        /// <summary>How long the cut waits for the writers' lock (default 10 s).</summary>
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);

        public HealResult Repair(string store, IntegrityResult damage, CancellationToken cancellationToken)
        {
            if (!damage.OnlyTornTail)
            {
                var kinds = string.Join(", ", damage.Findings.Select(f => f.Kind.ToString()).Distinct());
                return new HealResult(HealOutcome.NotPossible,
                    $"The damage ({kinds}) is inside the log, not a torn tail: cutting it would lose acknowledged records. " +
                    "Run Repair-BmadStore (integrity checker) or restore the latest verified backup.");
            }

            using var opened = FileEventStore.Open(store, new StoreOpenOptions { LockTimeout = LockTimeout });
            var cuts = opened.Notices.Where(n => n.Code == "TornTailRepaired").ToList();
            if (cuts.Count == 0)
            {
                return new HealResult(HealOutcome.NotNeeded, "The torn tail was gone when the writers' lock was taken (a writer had completed or cut it).");
            }

            return new HealResult(HealOutcome.Healed,
                string.Join(" ", cuts.Select(c => c.Message)),
                cuts.Where(c => c.QuarantinePath != null).Select(c => c.QuarantinePath!).ToList(),
                cuts.Sum(c => c.Bytes));
        }

        public HealResult RestoreLatest(string store, CancellationToken cancellationToken)
            => new HealResult(HealOutcome.NotAvailable,
                "Restore from backup is not available in this build yet (the backup/restore feature, Restore-BmadStore, is not installed). The store was not touched.");
    }
}
