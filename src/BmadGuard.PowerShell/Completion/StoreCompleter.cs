using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using BmadGuard.Core.Storage;

namespace BmadGuard.Completion
{
    /// <summary>
    /// Completes -Store with directories only (a store is a directory), BmadGuard stores first, relative to the
    /// PowerShell location. Reads directory names only: nothing is opened or written.
    /// </summary>
    public sealed class StoreCompleter : IArgumentCompleter
    {
        private const int MaxResults = 200;

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            try
            {
                string word = (wordToComplete ?? string.Empty).Trim('\'', '"');
                string? location = CurrentLocation();
                if (location == null)
                {
                    return Array.Empty<CompletionResult>();
                }

                string expanded = word.StartsWith("~", StringComparison.Ordinal)
                    ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + word.Substring(1)
                    : word;
                string full = Path.IsPathRooted(expanded) ? expanded : Path.Combine(location, expanded);
                bool endsWithSeparator = word.Length == 0 || word.EndsWith("/", StringComparison.Ordinal) || word.EndsWith("\\", StringComparison.Ordinal);
                string? parent = endsWithSeparator ? full : Path.GetDirectoryName(full);
                string prefix = endsWithSeparator ? string.Empty : Path.GetFileName(full);
                string typed = endsWithSeparator ? word : word.Substring(0, word.Length - prefix.Length);
                if (parent == null || !Directory.Exists(parent))
                {
                    return Array.Empty<CompletionResult>();
                }

                return Directory.EnumerateDirectories(parent, prefix + "*")
                    .Take(MaxResults)
                    .Select(d => (Path: d, Name: Path.GetFileName(d), IsStore: StorePaths.IsStore(d)))
                    .OrderBy(d => d.IsStore ? 0 : 1)
                    .ThenBy(d => d.Name, StringComparer.OrdinalIgnoreCase)
                    .Select(d =>
                    {
                        string text = typed + d.Name;
                        string quoted = text.IndexOfAny(new[] { ' ', '\'', '$', '`', '(', ')', '{', '}', ';', ',', '&' }) >= 0 ? "'" + text.Replace("'", "''") + "'" : text;
                        return new CompletionResult(quoted, d.Name, CompletionResultType.ProviderContainer, d.IsStore ? $"BmadGuard store {d.Path}" : d.Path);
                    })
                    .ToArray();
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is ArgumentException || ex is PSInvalidOperationException || ex is RuntimeException)
            {
                return Array.Empty<CompletionResult>();
            }
        }

        private static string? CurrentLocation()
        {
            if (Runspace.DefaultRunspace == null)
            {
                return Directory.GetCurrentDirectory();
            }

            using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
            ps.AddCommand("Microsoft.PowerShell.Management\\Get-Location");
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

    /// <summary>Completes -Consumer with the consumers of the store the command line names (their position files).</summary>
    public sealed class ConsumerCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            try
            {
                string? store = RecentEventNames.ResolveStore(fakeBoundParameters);
                string dir = store == null ? string.Empty : Path.Combine(store, StorePaths.ConsumersDirName);
                if (store == null || !Directory.Exists(dir))
                {
                    return Array.Empty<CompletionResult>();
                }

                string prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
                var pattern = new WildcardPattern(WildcardPattern.Escape(prefix) + "*", WildcardOptions.IgnoreCase);
                return Directory.EnumerateFiles(dir, "*.json")
                    .Select(f => Path.GetFileNameWithoutExtension(f))
                    .Where(n => pattern.IsMatch(n))
                    .OrderBy(n => n, StringComparer.OrdinalIgnoreCase)
                    .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, $"Consumer {n} of {store}"))
                    .ToArray();
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is ArgumentException)
            {
                return Array.Empty<CompletionResult>();
            }
        }
    }
}
