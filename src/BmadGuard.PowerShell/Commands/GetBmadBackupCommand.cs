using System;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>Get-BmadBackup: a store's backups, newest first (by the log: last seq, then writer epoch), with their verification state (BackupCatalog.List).</summary>
    [Cmdlet(VerbsCommon.Get, "BmadBackup", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadBackup.md")]
    [OutputType(typeof(BmadBackup))]
    public sealed class GetBmadBackupCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "GetBmadBackup";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>Only backups with these names; wildcards allowed.</summary>
        [Parameter(Position = 0)]
        [ArgumentCompleter(typeof(BackupNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Name { get; set; }

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Check every file's SHA-256 and every record (slower) instead of the manifest, presence and sizes.</summary>
        [Parameter]
        public SwitchParameter Deep { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            var patterns = (Name ?? Array.Empty<string>()).Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
            foreach (string literal in (Name ?? Array.Empty<string>()).Where(n => !WildcardPattern.ContainsWildcardCharacters(n)))
            {
                try
                {
                    // A name with a path separator or '..' is an input error, reported as such before anything is read.
                    StoreRestore.Validate(path, new RestoreRequest { BackupName = literal });
                }
                catch (Core.BmadGuardException ex)
                {
                    WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, literal));
                    return;
                }
            }

            var progress = new BackupProgressWriter(this, 2, $"Checking the backups of {path}");
            try
            {
                var all = BackupCatalog.List(path, null, Deep ? BackupCheck.Deep : BackupCheck.Quick, progress, _stop.Token);
                foreach (var b in all.Where(b => patterns.Length == 0 || patterns.Any(p => p.IsMatch(b.Name))))
                {
                    WriteObject(new BmadBackup(b));
                }

                foreach (string literal in (Name ?? Array.Empty<string>()).Where(n => !WildcardPattern.ContainsWildcardCharacters(n)))
                {
                    if (!all.Any(b => string.Equals(b.Name, literal, StringComparison.OrdinalIgnoreCase)))
                    {
                        WriteError(BmadCmdletSupport.ToErrorRecord(
                            new Core.BmadGuardException(ErrorCodes.BackupNotFound, FailureKind.InvalidInput, $"The store '{path}' has no backup named '{literal}'. Get-BmadBackup lists them."),
                            ErrorPrefix, literal));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
            finally
            {
                progress.Complete();
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
