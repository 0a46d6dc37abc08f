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
        private long _itemNumber;
        private bool _whatIf;
        private EventLimits? _whatIfLimits;

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
            _whatIf = BmadCmdletSupport.WhatIfRequested(this);
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == LegacySet)
            {
                PublishLegacy();
                return;
            }

            long number = ++_itemNumber;
            object? target = ParameterSetName == InputObjectSet ? (object?)InputObject : Type;
            PendingEvent item;
            try
            {
                item = ParameterSetName == InputObjectSet ? FromInputObject(InputObject, number) : FromFields(Type, Data, Source, CorrelationId, Type, number);
                if (_whatIf)
                {
                    // -WhatIf checks everything a publish would check but the append: the data against the store's
                    // own limits too (size, depth), read from its settings without opening it.
                    _whatIfLimits ??= FileEventStore.ReadLimits(_storePath);
                    EventSerializer.DataJson(item.Draft, _whatIfLimits);
                }
            }
            catch (Core.BmadGuardException ex)
            {
                WriteError(ItemError(ex, number, target));
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
            catch (Core.BmadGuardException ex) when (ex.Code == ErrorCodes.LegacyLockFileDeleted)
            {
                var hinted = new Core.BmadGuardException(ex.Code, ex.Kind, ex.Message + " Migrate the agents to a store (Import-BmadLegacyBus, then the drop-in bus; see docs/migrating-bmad-agents.md),"
                    + " or make the bus keep its lock file (remove the deletion of <file>.lock from its file_lock), then publish again.", ex.Path, inner: ex);
                WriteError(BmadCmdletSupport.ToErrorRecord(hinted, ErrorPrefix, file));
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

        /// <summary>
        /// A bad pipeline item's error: the Core error with its ErrorId, and a message naming the item's position in
        /// the pipeline (1-based, every input object counted), as <c>bmadguard publish --stdin</c> names the line.
        /// </summary>
        private ErrorRecord ItemError(Core.BmadGuardException ex, long number, object? target)
        {
            var record = BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, target);
            record.ErrorDetails = new ErrorDetails($"Pipeline item {number}: {ex.Message}");
            return record;
        }

        private static PendingEvent FromFields(string type, object? data, string? source, string? correlationId, object? target, long number)
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
            return new PendingEvent(BmadCmdletSupport.ToDraft(type, data, source, correlationId), target, number);
        }

        private static readonly string[] EventKeys = { "Type", "Data", "Source", "CorrelationId" };

        private static PendingEvent FromInputObject(PSObject? input, long number)
        {
            object? baseObject = input?.BaseObject;
            if (baseObject == null || baseObject is string || baseObject.GetType().IsPrimitive)
            {
                throw new Core.BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    "Pipe events as hashtables or objects with Type and Data (and optionally Source and CorrelationId) properties.");
            }

            if (baseObject is IDictionary keys)
            {
                // A hashtable is written for this command, so a key it does not know is a mistake (a typo such as
                // 'Tpye', or a value meant for Data) and is refused rather than silently dropped. Objects with more
                // properties (Get-BmadEvent's output: Seq, Id, Timestamp) are taken as they are.
                foreach (DictionaryEntry entry in keys)
                {
                    string key = Convert.ToString(entry.Key is PSObject pk ? pk.BaseObject : entry.Key, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
                    if (Array.FindIndex(EventKeys, k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase)) < 0)
                    {
                        throw new Core.BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                            $"The event hashtable has the key '{key}', which Publish-BmadEvent does not know: use Type, Data, Source and CorrelationId, and put anything else inside Data.");
                    }
                }
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

            string? type = AsString(Field("Type"));
            if (string.IsNullOrEmpty(type))
            {
                throw new Core.BmadGuardException(ErrorCodes.InvalidEventType, FailureKind.InvalidInput,
                    baseObject is IDictionary
                        ? "The event has no Type: give the hashtable a Type key (for example @{ Type = 'story.created'; Data = @{ ... } })."
                        : $"The event has no Type: the {baseObject.GetType().Name} has no Type property (or it is empty); pipe objects with Type and Data, or give -Type.");
            }

            return FromFields(type!, Field("Data"), AsString(Field("Source")), AsString(Field("CorrelationId")), input, number);
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

            PublishAndWrite(batch, drafts);
        }

        /// <summary>
        /// Publishes a batch through Core's batch contract (the one <c>bmadguard publish --stdin</c> uses): each bad
        /// event is rejected on its own with its ErrorId and pipeline position, the good ones go in, in order, under
        /// one fsync. The ack callback runs while Core holds the writers' lock, so it only collects: writing to the
        /// pipeline there would run downstream commands (which may publish to the same store) under our lock. Events
        /// are written once PublishEach returns or fails, and every one of them was acknowledged, i.e. fsynced.
        /// </summary>
        private void PublishAndWrite(PendingEvent[] batch, EventDraft[] drafts)
        {
            var acknowledged = new List<EventRecord>(drafts.Length);
            BatchPublishResult result;
            try
            {
                result = _store!.PublishEach(drafts, (_, r) => acknowledged.Add(r), _stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C while waiting for the lock: what was acknowledged is still written.
                WriteAcknowledged(acknowledged);
                return;
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                // The store cannot take events (lock timeout, disk full, damage): the call cannot proceed.
                WriteAcknowledged(acknowledged);
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, _storePath));
                return;
            }

            WriteAcknowledged(acknowledged);
            foreach (var rejected in result.Rejected)
            {
                var item = batch[rejected.Index];
                WriteError(ItemError(rejected.Error, item.Number, item.Target));
            }
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
            public PendingEvent(EventDraft draft, object? target, long number)
            {
                Draft = draft;
                Target = target;
                Number = number;
            }

            public EventDraft Draft { get; }

            public object? Target { get; }

            /// <summary>The item's position in the pipeline (1-based).</summary>
            public long Number { get; }
        }
    }
}
