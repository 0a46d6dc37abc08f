using System;
using System.IO;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Test-BmadIntegrity: checks a store deeply (every record's checksum, contiguous seqs, headers, consumers,
    /// quarantine, registered checks such as backups) or a JSON file (strict RFC 8259, then the legacy bus shape
    /// or a JSON Schema), and writes a report; -Quiet writes only $true/$false. What is checked follows what is on
    /// disk: a directory is a store, a file is a JSON file, whichever parameter named it.
    /// One call into Core per item: StoreVerifier.Verify or JsonFileVerifier.Verify.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "BmadIntegrity", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Test-BmadIntegrity.md", DefaultParameterSetName = StoreSet)]
    [OutputType(typeof(BmadIntegrityReport))]
    public sealed class TestBmadIntegrityCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "TestBmadIntegrity";
        private const string StoreSet = "Store";
        private const string PathSet = "Path";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory (or a JSON file: it is checked as one). Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ParameterSetName = StoreSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>A JSON file to check (a legacy bus file unless -Schema or -JsonOnly says otherwise), or a store directory.</summary>
        [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName")]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>Check the JSON file against this JSON Schema file instead of the legacy bus shape.</summary>
        [Parameter(ParameterSetName = PathSet)]
        [ValidateNotNullOrEmpty]
        public string? Schema { get; set; }

        /// <summary>Check only that the file is strict JSON (no legacy bus shape, no schema).</summary>
        [Parameter(ParameterSetName = PathSet)]
        public SwitchParameter JsonOnly { get; set; }

        /// <summary>Write only $true (healthy) or $false (damaged) instead of the report.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void ProcessRecord()
        {
            string? target = ParameterSetName == PathSet
                ? BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix)
                : BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            if (target == null)
            {
                return;
            }

            string? schema = null;
            if (Schema != null)
            {
                schema = BmadCmdletSupport.ResolveFilePath(this, Schema, ErrorPrefix);
                if (schema == null)
                {
                    return;
                }
            }

            var progress = new CmdletProgress(this, "Test-BmadIntegrity " + target);
            try
            {
                IntegrityReport report;
                if (Directory.Exists(target) || (!File.Exists(target) && ParameterSetName == StoreSet))
                {
                    if (schema != null || JsonOnly.IsPresent)
                    {
                        WriteError(new ErrorRecord(new ArgumentException($"'{target}' is a directory (a store); -Schema and -JsonOnly apply to JSON files."),
                            ErrorPrefix + "InvalidArgument", ErrorCategory.InvalidArgument, target));
                        return;
                    }

                    // A directory that is no store at all fails with StoreNotFound (TestBmadIntegrityStoreNotFound).
                    report = StoreVerifier.Verify(target, new StoreVerifyOptions { Progress = progress }, _stop.Token);
                }
                else
                {
                    var options = new JsonFileVerifyOptions
                    {
                        Check = schema != null ? JsonFileCheck.Schema : JsonOnly.IsPresent ? JsonFileCheck.JsonOnly : JsonFileCheck.LegacyBus,
                        SchemaPath = schema,
                    };
                    report = JsonFileVerifier.Verify(target, options);
                }

                if (Quiet.IsPresent)
                {
                    WriteObject(report.Healthy);
                }
                else
                {
                    WriteObject(BmadIntegrityReport.FromReport(report));
                }
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: no report for a check that did not finish.
            }
            catch (Exception ex) when (Quiet.IsPresent && IsMissing(ex))
            {
                // -Quiet answers a yes/no question, like Test-Path: a store or file that is not there is not intact.
                WriteVerbose(ex.Message);
                WriteObject(false);
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                // A missing file or a bad schema concerns this item only; the next piped path is still checked.
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, target));
            }
            finally
            {
                progress.Complete();
            }
        }

        private static bool IsMissing(Exception ex)
            => (ex is Core.BmadGuardException b && (b.Code == ErrorCodes.StoreNotFound || b.Code == ErrorCodes.FileNotFound))
               || ex is FileNotFoundException || ex is DirectoryNotFoundException;

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
