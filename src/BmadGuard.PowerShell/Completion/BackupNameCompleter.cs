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
            => Names(store, wordToComplete).Select(n => new CompletionResult(n.Name, n.Name, CompletionResultType.ParameterValue, n.Description)).ToArray();

        /// <summary>The store's backups whose name starts with the word (quotes ignored, any case), newest first.</summary>
        internal static IReadOnlyList<(string Name, string Description)> Names(string store, string? wordToComplete)
        {
            string prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            try
            {
                if (!StorePaths.IsStore(store))
                {
                    return Array.Empty<(string, string)>();
                }

                using var budget = new CancellationTokenSource(TimeBudget);
                return BackupCatalog.List(store, null, BackupCheck.Quick, null, budget.Token)
                    .Where(b => b.Name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .OrderByDescending(b => b, BackupCatalog.LogOrder) // newest first, as Get-BmadBackup lists them
                    .Select(b => (b.Name, $"{b.Kind} {b.State}, {b.EventCount} events up to seq {b.LastSeq}, made {b.Created:u}"))
                    .ToArray();
            }
            catch (Exception ex) when (ex is OperationCanceledException || ex is System.IO.IOException || ex is UnauthorizedAccessException || ex is Core.BmadGuardException)
            {
                return Array.Empty<(string, string)>();
            }
        }
    }
}
