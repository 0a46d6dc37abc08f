using System;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>What every command shares: the --store option, error reporting and exit codes, JSON output.</summary>
    internal static class CliSupport
    {
        public static Option<string?> StoreOption() => new Option<string?>("--store")
        {
            Description = $"The store directory (default: ${StorePaths.EnvironmentVariable}, else {StorePaths.DefaultStore()}).",
        };

        public static string ResolveStore(string? store) => Path.GetFullPath(string.IsNullOrWhiteSpace(store) ? StorePaths.DefaultStore() : store!);

        /// <summary>Runs a command body, turning failures into one stderr line and the contract's exit code.</summary>
        public static int Run(Func<int> body)
        {
            try
            {
                return body();
            }
            catch (BmadGuardException ex)
            {
                Console.Error.WriteLine($"bmadguard: {ex.Code}: {ex.Message}");
                return ex.Kind == FailureKind.InvalidInput ? ExitCodes.Usage : ExitCodes.StoreProblem;
            }
            catch (OperationCanceledException)
            {
                return ExitCodes.Success;
            }
            catch (IOException ex)
            {
                Console.Error.WriteLine($"bmadguard: StoreIOError: {ex.Message}");
                return ExitCodes.StoreProblem;
            }
            catch (UnauthorizedAccessException ex)
            {
                Console.Error.WriteLine($"bmadguard: AccessDenied: {ex.Message}");
                return ExitCodes.StoreProblem;
            }
        }

        /// <summary>Prints the store's notices on stderr, skipping the first <paramref name="skip"/> (already printed).</summary>
        public static void PrintNotices(IEventStore store, int skip = 0)
        {
            foreach (var notice in System.Linq.Enumerable.Skip(store.Notices, skip))
            {
                Console.Error.WriteLine($"bmadguard: notice: {notice.Code}: {notice.Message}");
            }
        }

        /// <summary>Cancels on Ctrl+C and SIGTERM (and SIGQUIT with <paramref name="includeQuit"/>, the monitor) so --follow and long commands stop cleanly.</summary>
        public static SignalCancellation CancelOnSignal(bool includeQuit = false) => new SignalCancellation(includeQuit);

        public static Stream StdOut() => Console.OpenStandardOutput();

        public static Utf8JsonWriter JsonWriter(Stream stream, bool indented = false)
            => new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    /// <summary>A cancellation source tripped by SIGINT (Ctrl+C) and SIGTERM; the signal does not kill the process.</summary>
    internal sealed class SignalCancellation : IDisposable
    {
        private readonly CancellationTokenSource _cts = new CancellationTokenSource();
        private readonly System.Runtime.InteropServices.PosixSignalRegistration _int;
        private readonly System.Runtime.InteropServices.PosixSignalRegistration _term;
        private readonly System.Runtime.InteropServices.PosixSignalRegistration? _quit;

        public SignalCancellation(bool includeQuit = false)
        {
            _int = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, OnSignal);
            _term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, OnSignal);
            if (includeQuit)
            {
                _quit = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGQUIT, OnSignal);
            }
        }

        public CancellationToken Token => _cts.Token;

        private void OnSignal(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            _cts.Cancel();
        }

        public void Dispose()
        {
            _int.Dispose();
            _term.Dispose();
            _quit?.Dispose();
            _cts.Dispose();
        }
    }
}
