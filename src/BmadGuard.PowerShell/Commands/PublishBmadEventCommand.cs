using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Publish-BmadEvent: validates events, appends them durably and writes each acknowledged event to the
    /// pipeline. Pipeline input is collected and published in batches (one lock and one fsync per batch);
    /// an event is written to the pipeline only after the fsync that covers it.
    /// The default parameter set is InputObject: with Fields as the default, PowerShell's binder commits to Fields
    /// for piped input and a piped hashtable (whose keys are not properties) binds to nothing. -Type or a positional
    /// type still selects Fields.
    /// </summary>
    [Cmdlet(VerbsData.Publish, "BmadEvent", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Publish-BmadEvent.md", DefaultParameterSetName = InputObjectSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(BmadEvent), ParameterSetName = new[] { FieldsSet, InputObjectSet })]
    [OutputType(typeof(BmadLegacyPublishResult), ParameterSetName = new[] { LegacySet })]
    public sealed class PublishBmadEventCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "PublishBmadEvent";
        internal const int DefaultBatchSize = 500;
        private const string FieldsSet = "Fields";
        private const string InputObjectSet = "InputObject";
        private const string LegacySet = "Legacy";

        private readonly List<PendingEvent> _pending = new List<PendingEvent>();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private string _storePath = string.Empty;
        private IEventStore? _store;

        /// <summary>The event type, e.g. story.created (letters, digits, '_', '-', dot-separated).</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = FieldsSet, ValueFromPipelineByPropertyName = true)]
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = LegacySet, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(EventTypeCompleter))]
        public string Type { get; set; } = string.Empty;

        /// <summary>The event's data: a hashtable, an object with properties, or a JSON object string. Default {}.</summary>
        [Parameter(Position = 1, ParameterSetName = FieldsSet, ValueFromPipelineByPropertyName = true)]
        [Parameter(Position = 1, ParameterSetName = LegacySet, ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        public object? Data { get; set; }

        /// <summary>The publishing agent (default 'unknown').</summary>
        [Parameter(ParameterSetName = FieldsSet, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(EventSourceCompleter))]
        public string? Source { get; set; }

        /// <summary>Ties related events together.</summary>
        [Parameter(ParameterSetName = FieldsSet, ValueFromPipelineByPropertyName = true)]
        public string? CorrelationId { get; set; }

        /// <summary>An event as one object: a hashtable or object with Type, Data, Source and CorrelationId.</summary>
        [Parameter(Mandatory = true, ParameterSetName = InputObjectSet, ValueFromPipeline = true)]
        public PSObject? InputObject { get; set; }

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(ParameterSetName = FieldsSet)]
        [Parameter(ParameterSetName = InputObjectSet)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>
        /// A legacy bus file (shared_context.json) to append the event to instead of a store: under the Python agents'
        /// lock (flock on &lt;file&gt;.lock), after a backup generation, by atomic replace. Created when missing.
        /// </summary>
        [Parameter(Mandatory = true, ParameterSetName = LegacySet)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>With -Path: how many backup generations of the file to keep (default 20, at least 1).</summary>
        [Parameter(ParameterSetName = LegacySet)]
        [ValidateRange(1, 100000)]
        public int KeepGenerations { get; set; } = LegacyFiles.DefaultKeepGenerations;

        /// <summary>Seconds to wait for the writers' lock before failing (default 5).</summary>
        [Parameter]
        [ValidateRange(0.0, 86400.0)]
        public double LockTimeout { get; set; } = StoreLock.DefaultTimeout.TotalSeconds;

        /// <summary>How many pipeline events share one lock and one fsync (default 500; 1 publishes each as it arrives).</summary>
        [Parameter(ParameterSetName = FieldsSet)]
        [Parameter(ParameterSetName = InputObjectSet)]
        [ValidateRange(1, 100000)]
        public int BatchSize { get; set; } = DefaultBatchSize;

        protected override void BeginProcessing()
        {
            if (ParameterSetName == LegacySet)
            {
                return;
            }

            _storePath = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == LegacySet)
            {
                PublishLegacy();
                return;
            }

            PendingEvent item;
            try
            {
                item = ParameterSetName == InputObjectSet ? FromInputObject(InputObject) : FromFields(Type, Data, Source, CorrelationId, Type);
            }
            catch (Core.BmadGuardException ex)
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, ParameterSetName == InputObjectSet ? (object?)InputObject : Type));
                return;
            }

            if (!ShouldProcess($"{_storePath} (type {item.Draft.Type})", "Publish event"))
            {
                return;
            }

            _pending.Add(item);
            if (_pending.Count >= BatchSize)
            {
                Flush();
            }
        }

        protected override void EndProcessing() => Flush();

        /// <summary>
        /// -Path: one guarded legacy publish per item (LegacyBusFile.Publish). A bad type or data, a damaged file
        /// (LegacyFileDamaged: repair it first) or a missing directory is this item's error; the next item still goes.
        /// </summary>
        private void PublishLegacy()
        {
            string? file = BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix);
            if (file == null)
            {
                return;
            }

            try
            {
                // Core validates the data exactly as a store publish would, and gives it back as compact JSON.
                string dataJson = EventSerializer.DataJson(BmadCmdletSupport.ToDraft(Type, Data, null, null));
                if (!ShouldProcess($"{file} (type {Type})", "Publish event to the legacy bus file"))
                {
                    return;
                }

                var options = new LegacyWriteOptions { LockTimeout = TimeSpan.FromSeconds(LockTimeout), KeepGenerations = KeepGenerations };
                WriteObject(BmadLegacyPublishResult.FromResult(LegacyBusFile.Publish(file, Type, dataJson, options, _stop.Token)));
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C while waiting for the agents' lock: nothing was written.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, file));
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose()
        {
            _store?.Dispose();
            _stop.Dispose();
        }

        private static PendingEvent FromFields(string type, object? data, string? source, string? correlationId, object? target)
        {
            // An empty Source or CorrelationId (a blank CSV column, an unset property) means none.
            source = string.IsNullOrEmpty(source) ? null : source;
            correlationId = string.IsNullOrEmpty(correlationId) ? null : correlationId;

            // Names are checked here so a bad one is reported at its own item; data is checked by Core at publish.
            EventSerializer.ValidateType(type);
            if (source != null)
            {
                EventSerializer.ValidateSource(source);
            }

            EventSerializer.ValidateCorrelationId(correlationId);
            return new PendingEvent(BmadCmdletSupport.ToDraft(type, data, source, correlationId), target);
        }

        private static PendingEvent FromInputObject(PSObject? input)
        {
            object? baseObject = input?.BaseObject;
            if (baseObject == null || baseObject is string || baseObject.GetType().IsPrimitive)
            {
                throw new Core.BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    "Pipe events as hashtables or objects with Type and Data (and optionally Source and CorrelationId) properties.");
            }

            object? Field(string name)
            {
                if (baseObject is IDictionary dict)
                {
                    foreach (DictionaryEntry entry in dict)
                    {
                        if (string.Equals(Convert.ToString(entry.Key, System.Globalization.CultureInfo.InvariantCulture), name, StringComparison.OrdinalIgnoreCase))
                        {
                            return entry.Value;
                        }
                    }

                    return null;
                }

                return input!.Properties[name]?.Value;
            }

            return FromFields(AsString(Field("Type")) ?? string.Empty, Field("Data"), AsString(Field("Source")), AsString(Field("CorrelationId")), input);
        }

        private static string? AsString(object? value)
        {
            object? v = value is PSObject p ? p.BaseObject : value;
            return v == null ? null : Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture);
        }

        private void Flush()
        {
            if (_pending.Count == 0)
            {
                return;
            }

            var batch = _pending.ToArray();
            _pending.Clear();
            _store ??= BmadCmdletSupport.OpenStore(this, _storePath, ErrorPrefix, TimeSpan.FromSeconds(LockTimeout), createDefaultStore: !MyInvocation.BoundParameters.ContainsKey(nameof(Store)));
            var drafts = new EventDraft[batch.Length];
            for (int i = 0; i < batch.Length; i++)
            {
                drafts[i] = batch[i].Draft;
            }

            try
            {
                PublishAndWrite(drafts);
            }
            catch (Core.BmadGuardException ex) when (ex.Kind == FailureKind.InvalidInput && batch.Length > 1)
            {
                // Core checks every event of a batch before writing any, so nothing of this batch was written.
                // Publish its events one at a time so only the bad ones fail and the rest still go in, in order.
                foreach (var item in batch)
                {
                    try
                    {
                        PublishAndWrite(new[] { item.Draft });
                    }
                    catch (Core.BmadGuardException one) when (one.Kind == FailureKind.InvalidInput)
                    {
                        WriteError(BmadCmdletSupport.ToErrorRecord(one, ErrorPrefix, item.Target));
                    }
                }
            }
            catch (Core.BmadGuardException ex) when (ex.Kind == FailureKind.InvalidInput)
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, batch[0].Target));
            }
        }

        /// <summary>
        /// Publishes and writes what was acknowledged. The ack callback runs while Core holds the writers'
        /// lock, so it only collects: writing to the pipeline there would run downstream commands (which
        /// may publish to the same store) under our lock. Events are written once Publish returns or fails,
        /// and every one of them was acknowledged, i.e. fsynced.
        /// </summary>
        private void PublishAndWrite(EventDraft[] drafts)
        {
            var acknowledged = new List<EventRecord>(drafts.Length);
            try
            {
                _store!.Publish(drafts, acknowledged.Add, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C while waiting for the lock: what was acknowledged is still written below.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex) && !BmadCmdletSupport.IsInvalidInput(ex))
            {
                // The store cannot take events (lock timeout, disk full, damage): the call cannot proceed.
                WriteAcknowledged(acknowledged);
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, _storePath));
            }

            WriteAcknowledged(acknowledged);
        }

        private void WriteAcknowledged(List<EventRecord> acknowledged)
        {
            foreach (var r in acknowledged)
            {
                WriteObject(BmadEvent.FromRecord(r));
            }

            acknowledged.Clear();
        }

        private sealed class PendingEvent
        {
            public PendingEvent(EventDraft draft, object? target)
            {
                Draft = draft;
                Target = target;
            }

            public EventDraft Draft { get; }

            public object? Target { get; }
        }
    }
}
