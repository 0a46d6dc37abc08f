using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Get-BmadEvent: reads events in seq order, filtered by type and source (wildcards), seq, time and
    /// count; -Follow keeps streaming new events until Ctrl+C; -Consumer reads only what a named consumer
    /// has not read yet and moves its durable position as events are delivered (one position per -Type/-Source
    /// filter; -Last is refused with it). Damaged records: a non-terminating GetBmadEventDamagedRecord error.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BmadEvent", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadEvent.md")]
    [OutputType(typeof(BmadEvent))]
    public sealed class GetBmadEventCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "GetBmadEvent";

        /// <summary>How often -Follow looks for new events (the CLI's --follow uses the same).</summary>
        internal static readonly TimeSpan FollowPollInterval = TimeSpan.FromMilliseconds(200);

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>Only events of this type; wildcards * ? [] (case-insensitive), e.g. story.*.</summary>
        [Parameter(Position = 0)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(EventTypeCompleter))]
        public string? Type { get; set; }

        /// <summary>Only events from this source; wildcards allowed.</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(EventSourceCompleter))]
        public string? Source { get; set; }

        /// <summary>Only events with a seq greater than this.</summary>
        [Parameter]
        [ValidateRange(0L, long.MaxValue)]
        public long After { get; set; }

        /// <summary>Only events accepted at or after this time (a DateTime without a zone is local time).</summary>
        [Parameter]
        public DateTime Since { get; set; }

        /// <summary>Only the last N matching events (with -Follow: the last N, then new events).</summary>
        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int Last { get; set; }

        /// <summary>Keep streaming new events until Ctrl+C.</summary>
        [Parameter]
        public SwitchParameter Follow { get; set; }

        /// <summary>A named consumer: only events it has not read yet; its position is kept in the store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.ConsumerCompleter))]
        public string? Consumer { get; set; }

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            var bound = MyInvocation.BoundParameters;
            var query = new EventQuery
            {
                Type = Type,
                Source = Source,
                After = bound.ContainsKey(nameof(After)) ? After : (long?)null,
                Since = bound.ContainsKey(nameof(Since)) ? ToOffset(Since) : (DateTimeOffset?)null,
                Last = bound.ContainsKey(nameof(Last)) ? Last : (int?)null,
                Consumer = Consumer,

                // Damaged records are a non-terminating error (GetBmadEventDamagedRecord) after the events before
                // them, so a pipeline still gets every readable event.
                OnDamage = ex => WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, ex.Path ?? path)),
            };

            using var store = BmadCmdletSupport.OpenStore(this, path, ErrorPrefix);
            try
            {
                var events = Follow.IsPresent ? store.Follow(query, FollowPollInterval, _stop.Token) : store.Read(query, _stop.Token);
                foreach (var record in events)
                {
                    WriteObject(BmadEvent.FromRecord(record));
                }
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C (StopProcessing): a clean end; a consumer's position covers what was delivered.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();

        /// <summary>A DateTime as an instant: Utc stays UTC, Local and Unspecified are local time (Get-Date's kind).</summary>
        internal static DateTimeOffset ToOffset(DateTime value)
            => value.Kind == DateTimeKind.Utc ? new DateTimeOffset(value, TimeSpan.Zero) : new DateTimeOffset(DateTime.SpecifyKind(value, DateTimeKind.Local));
    }
}
