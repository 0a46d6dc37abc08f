using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Completion
{
    /// <summary>
    /// The types and sources of recent events in the store a command line names (-Store, else
    /// $env:BMADGUARD_STORE, else the default store), for tab completion. Kept cheap: it reads only the
    /// newest segment, at most <see cref="MaxEvents"/> events, for at most <see cref="TimeBudget"/>, and
    /// gives nothing (rather than an error) when the store cannot be read.
    /// </summary>
    internal static class RecentEventNames
    {
        internal const int MaxEvents = 2000;
        internal static readonly TimeSpan TimeBudget = TimeSpan.FromMilliseconds(300);

        public static IEnumerable<CompletionResult> Complete(string wordToComplete, IDictionary fakeBoundParameters, Func<EventRecord, string> select, string what)
        {
            string? store = ResolveStore(fakeBoundParameters);
            if (store == null)
            {
                return Array.Empty<CompletionResult>();
            }

            string prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            var pattern = new WildcardPattern(WildcardPattern.Escape(prefix) + "*", WildcardOptions.IgnoreCase);
            return Names(store, select)
                .Where(n => pattern.IsMatch(n))
                .OrderBy(n => n, StringComparer.OrdinalIgnoreCase)
                .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, $"{what} {n} (recent events in {store})"))
                .ToArray();
        }

        /// <summary>Distinct names among the newest events of the store.</summary>
        internal static IReadOnlyCollection<string> Names(string storePath, Func<EventRecord, string> select)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                if (!StorePaths.IsStore(storePath))
                {
                    return names;
                }

                using var budget = new CancellationTokenSource(TimeBudget);
                using var store = FileEventStore.Open(storePath);
                // Segment files are named by their first seq (segment-<firstSeq D20>.jsonl): read from the newest.
                long newestFirstSeq = Directory.GetFiles(Path.Combine(storePath, StorePaths.SegmentsDirName), "segment-*.jsonl")
                    .Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f).Substring("segment-".Length), out long seq) ? seq : 1L)
                    .DefaultIfEmpty(1L)
                    .Max();
                int count = 0;
                foreach (var record in store.Read(new EventQuery { After = Math.Max(0, newestFirstSeq - 1) }, budget.Token))
                {
                    names.Add(select(record));
                    if (++count >= MaxEvents)
                    {
                        break;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException || ex is IOException || ex is UnauthorizedAccessException || ex is Core.BmadGuardException)
            {
                // Completion is a convenience: a busy, missing or damaged store completes nothing.
            }

            return names;
        }

        internal static string? ResolveStore(IDictionary fakeBoundParameters)
        {
            string raw = fakeBoundParameters != null && fakeBoundParameters.Contains("Store") && fakeBoundParameters["Store"] is object value
                ? Convert.ToString(value is PSObject p ? p.BaseObject : value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty
                : StorePaths.DefaultStore();
            if (string.IsNullOrWhiteSpace(raw))
            {
                return null;
            }

            try
            {
                // Completion runs on the pipeline thread, so the current runspace's location is the user's. Its
                // SessionStateProxy gives no Path while a pipeline runs (PowerShell 7: null), so ask a nested
                // PowerShell on the same runspace; Resolve-Path resolves relative and PSDrive paths (and a store
                // that does not exist has nothing to complete anyway).
                if (Runspace.DefaultRunspace != null)
                {
                    using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
                    ps.AddCommand("Microsoft.PowerShell.Management\\Resolve-Path")
                        .AddParameter("LiteralPath", raw)
                        .AddParameter("ErrorAction", ActionPreference.Ignore);
                    foreach (var item in ps.Invoke())
                    {
                        if (item?.BaseObject is PathInfo info && info.Provider.Name == "FileSystem")
                        {
                            return info.ProviderPath;
                        }
                    }

                    return null;
                }
            }
            catch (Exception ex) when (ex is PSInvalidOperationException || ex is RuntimeException
                                       || ex is NotSupportedException || ex is ArgumentException)
            {
                return null;
            }

            return Path.IsPathRooted(raw) ? raw : null;
        }
    }

    /// <summary>Completes -Type with the types of recent events in the store.</summary>
    public sealed class EventTypeCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
            => RecentEventNames.Complete(wordToComplete, fakeBoundParameters, r => r.Type, "Event type");
    }

    /// <summary>Completes -Source with the sources of recent events in the store.</summary>
    public sealed class EventSourceCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
            => RecentEventNames.Complete(wordToComplete, fakeBoundParameters, r => r.Source, "Source");
    }
}
