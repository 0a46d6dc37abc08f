using System.Linq;
using System.Management.Automation;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// New-BmadStore: creates a store directory, or adopts the store already there (Created = false).
    /// A directory that holds other files is refused. Settings apply only when the store is created.
    /// </summary>
    [Cmdlet(VerbsCommon.New, "BmadStore", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/New-BmadStore.md", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(BmadStoreInfo))]
    public sealed class NewBmadStoreCommand : PSCmdlet
    {
        private const string ErrorPrefix = "NewBmadStore";

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Store", "FullName")]
        [ValidateNotNullOrEmpty]
        public string? Path { get; set; }

        /// <summary>Roll over to a new segment file at this size (default 64 MiB).</summary>
        [Parameter]
        [ValidateRange(1024L, long.MaxValue)]
        public long SegmentMaxBytes { get; set; } = StoreSettings.DefaultSegmentMaxBytes;

        /// <summary>The largest event accepted, in bytes (default 1 MiB).</summary>
        [Parameter]
        [ValidateRange(1024, int.MaxValue)]
        public int MaxEventBytes { get; set; } = Core.Events.EventLimits.DefaultMaxEventBytes;

        /// <summary>The deepest nesting accepted in event data (default 64).</summary>
        [Parameter]
        [ValidateRange(1, 1000)]
        public int MaxDepth { get; set; } = Core.Events.EventLimits.DefaultMaxDepth;

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Path, ErrorPrefix);
            bool exists = StorePaths.IsStore(path);
            if (!ShouldProcess(path, exists ? "Adopt the existing BmadGuard store" : "Create a BmadGuard store"))
            {
                return;
            }

            var settings = new StoreSettings { SegmentMaxBytes = SegmentMaxBytes, MaxEventBytes = MaxEventBytes, MaxDepth = MaxDepth };
            try
            {
                using var store = FileEventStore.Initialize(path, settings, null, out bool created);
                BmadCmdletSupport.WriteNotices(this, store);
                var actual = store.Settings;
                if (!created && (MyInvocation.BoundParameters.ContainsKey(nameof(SegmentMaxBytes)) && actual.SegmentMaxBytes != SegmentMaxBytes
                                 || MyInvocation.BoundParameters.ContainsKey(nameof(MaxEventBytes)) && actual.MaxEventBytes != MaxEventBytes
                                 || MyInvocation.BoundParameters.ContainsKey(nameof(MaxDepth)) && actual.MaxDepth != MaxDepth))
                {
                    WriteWarning($"The store at '{store.Root}' already exists; its settings are kept (settings apply only when a store is created).");
                }

                WriteObject(new BmadStoreInfo(store.Root, created, actual.SegmentMaxBytes, actual.MaxEventBytes, actual.MaxDepth,
                    store.Notices.Select(n => n.Message).ToArray()));
            }
            catch (System.Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                // One path that cannot become a store does not stop the others in the pipeline.
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
        }
    }
}
