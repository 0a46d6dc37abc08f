using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Storage;

namespace BmadGuard.Completion
{
    /// <summary>
    /// Completes -Name of Get-BmadBackup and Restore-BmadStore with the backups of the store the command line
    /// names (-Store, else $env:BMADGUARD_STORE, else the default store), newest first, with their state and
    /// last seq as the tooltip. A quick listing (manifests and sizes) within a time budget; nothing on failure.
    /// </summary>
    public sealed class BackupNameCompleter : IArgumentCompleter
    {
        internal static readonly TimeSpan TimeBudget = TimeSpan.FromMilliseconds(500);

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            string? store = RecentEventNames.ResolveStore(fakeBoundParameters);
            return store == null ? Array.Empty<CompletionResult>() : Complete(store, wordToComplete);
        }

        internal static IEnumerable<CompletionResult> Complete(string store, string? wordToComplete)
        {
            string prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            var pattern = new WildcardPattern(WildcardPattern.Escape(prefix) + "*", WildcardOptions.IgnoreCase);
            try
            {
                if (!StorePaths.IsStore(store))
                {
                    return Array.Empty<CompletionResult>();
                }

                using var budget = new CancellationTokenSource(TimeBudget);
                return BackupCatalog.List(store, null, BackupCheck.Quick, null, budget.Token)
                    .Where(b => pattern.IsMatch(b.Name))
                    .OrderByDescending(b => b.Name, StringComparer.Ordinal)
                    .Select(b => new CompletionResult(b.Name, b.Name, CompletionResultType.ParameterValue,
                        $"{b.Kind} {b.State}, {b.EventCount} events up to seq {b.LastSeq}, made {b.Created:u}"))
                    .ToArray();
            }
            catch (Exception ex) when (ex is OperationCanceledException || ex is System.IO.IOException || ex is UnauthorizedAccessException || ex is Core.BmadGuardException)
            {
                return Array.Empty<CompletionResult>();
            }
        }
    }
}
