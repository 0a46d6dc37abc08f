using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.IO;
using System.Management.Automation;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Infrastructure
{
    /// <summary>
    /// What every BmadGuard cmdlet shares: which store to use, how a Core failure becomes an ErrorRecord,
    /// and how PowerShell objects become the plain object graph Core serializes. Cmdlets stay thin by
    /// calling these; later cmdlets (backup, restore, monitor, ...) reuse them.
    /// </summary>
    internal static class BmadCmdletSupport
    {
        /// <summary>How deep <see cref="UnwrapData"/> follows nesting; deeper values are passed on as they are
        /// and Core reports them (DataTooDeep). Above Core's largest MaxDepth setting (1000).</summary>
        internal const int MaxUnwrapDepth = 1001;

        // ------------------------------------------------------------------ store resolution

        /// <summary>
        /// The store a command uses: <paramref name="store"/> when given, else <c>$env:BMADGUARD_STORE</c>,
        /// else the documented default (<see cref="StorePaths.DefaultStore"/>). Relative paths and PSDrive
        /// paths resolve against the PowerShell location (never the process directory).
        /// Throws a terminating error when the path is not a file-system path.
        /// </summary>
        public static string ResolveStorePath(PSCmdlet cmdlet, string? store, string errorPrefix)
        {
            string raw = string.IsNullOrWhiteSpace(store) ? StorePaths.DefaultStore() : store!;
            string resolved;
            ProviderInfo provider;
            try
            {
                resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(raw, out provider, out _);
            }
            catch (Exception ex) when (ex is SessionStateException
                                       || ex is NotSupportedException || ex is ArgumentException || ex is PSInvalidOperationException)
            {
                cmdlet.ThrowTerminatingError(new ErrorRecord(
                    new ArgumentException($"The store path '{raw}' cannot be resolved: {ex.Message}", ex),
                    errorPrefix + "InvalidStorePath", ErrorCategory.InvalidArgument, raw));
                throw; // not reached: ThrowTerminatingError always throws
            }

            if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            {
                cmdlet.ThrowTerminatingError(new ErrorRecord(
                    new ArgumentException($"The store path '{raw}' is on the {provider.Name} provider; a store is a file-system directory."),
                    errorPrefix + "InvalidStorePath", ErrorCategory.InvalidArgument, raw));
            }

            return resolved;
        }

        /// <summary>
        /// A file-system path given to a command (a legacy bus file, a schema, an export target), resolved against the
        /// PowerShell location (PSDrive paths included). A path on another provider, or one that cannot be resolved,
        /// is a non-terminating <c>&lt;Command&gt;InvalidPath</c> error for this item and null is returned.
        /// </summary>
        public static string? ResolveFilePath(PSCmdlet cmdlet, string path, string errorPrefix)
        {
            try
            {
                string resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out ProviderInfo provider, out _);
                if (string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
                {
                    return resolved;
                }

                cmdlet.WriteError(new ErrorRecord(new ArgumentException($"The path '{path}' is on the {provider.Name} provider; give a file-system path."),
                    errorPrefix + "InvalidPath", ErrorCategory.InvalidArgument, path));
            }
            catch (Exception ex) when (ex is SessionStateException
                                       || ex is NotSupportedException || ex is ArgumentException || ex is PSInvalidOperationException)
            {
                cmdlet.WriteError(new ErrorRecord(new ArgumentException($"The path '{path}' cannot be resolved: {ex.Message}", ex),
                    errorPrefix + "InvalidPath", ErrorCategory.InvalidArgument, path));
            }

            return null;
        }

        /// <summary>
        /// ShouldProcess, except that -Force without -WhatIf proceeds without asking (scheduled tasks have nobody to
        /// answer). -WhatIf always only describes; -Confirm:$false never prompts (PowerShell's own rule).
        /// </summary>
        public static bool Approve(PSCmdlet cmdlet, bool force, string target, string action)
        {
            if (force && !WhatIfRequested(cmdlet))
            {
                return true;
            }

            return cmdlet.ShouldProcess(target, action);
        }

        internal static bool WhatIfRequested(PSCmdlet cmdlet)
        {
            if (cmdlet.MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? value))
            {
                return value is SwitchParameter s ? s.IsPresent : value is bool b && b;
            }

            object? preference = cmdlet.SessionState.PSVariable.GetValue("WhatIfPreference");
            return LanguagePrimitives.IsTrue(preference is PSObject p ? p.BaseObject : preference);
        }

        /// <summary>Opens the store, turning a failure into a terminating error (nothing can proceed without it).</summary>
        /// <remarks>
        /// With <paramref name="createDefaultStore"/> (a writer given no -Store), the default store
        /// ($env:BMADGUARD_STORE, else the per-user one) is created on first use, as the old bus created its file. A
        /// store path given explicitly is never created here: it is an error naming New-BmadStore.
        /// </remarks>
        public static IEventStore OpenStore(PSCmdlet cmdlet, string storePath, string errorPrefix, TimeSpan? lockTimeout = null, bool createDefaultStore = false)
        {
            try
            {
                var options = new StoreOpenOptions();
                if (lockTimeout.HasValue)
                {
                    options.LockTimeout = lockTimeout.Value;
                }

                if (createDefaultStore && !StorePaths.IsStore(storePath)
                    && string.Equals(System.IO.Path.GetFullPath(StorePaths.DefaultStore()).TrimEnd(System.IO.Path.DirectorySeparatorChar), storePath.TrimEnd(System.IO.Path.DirectorySeparatorChar), StringComparison.Ordinal))
                {
                    var created = FileEventStore.Initialize(storePath, null, options, out bool isNew);
                    if (isNew)
                    {
                        cmdlet.WriteVerbose($"Created the default store {storePath} (first use).");
                    }

                    WriteNotices(cmdlet, created);
                    return created;
                }

                var store = FileEventStore.Open(storePath, options);
                WriteNotices(cmdlet, store);
                return store;
            }
            catch (Exception ex) when (IsStoreFailure(ex))
            {
                cmdlet.ThrowTerminatingError(ToErrorRecord(ex, errorPrefix, storePath));
                throw;
            }
        }

        /// <summary>
        /// Opens the store for one pipeline item: a failure is written as a non-terminating error (the next
        /// item, e.g. another store path, may still work) and false is returned.
        /// </summary>
        public static bool TryOpenStore(PSCmdlet cmdlet, string storePath, string errorPrefix, out IEventStore? store)
        {
            try
            {
                store = FileEventStore.Open(storePath);
                WriteNotices(cmdlet, store);
                return true;
            }
            catch (Exception ex) when (IsStoreFailure(ex))
            {
                cmdlet.WriteError(ToErrorRecord(ex, errorPrefix, storePath));
                store = null;
                return false;
            }
        }

        /// <summary>Things the store noticed and fixed, or wants a person to know: warnings, not errors.</summary>
        public static void WriteNotices(Cmdlet cmdlet, IEventStore store)
        {
            foreach (var notice in store.Notices)
            {
                cmdlet.WriteWarning($"{notice.Code}: {notice.Message}");
            }
        }

        // ------------------------------------------------------------------ errors

        /// <summary>The failures BmadGuard turns into ErrorRecords; anything else is a bug and propagates.</summary>
        public static bool IsStoreFailure(Exception ex)
            => ex is Core.BmadGuardException || ex is IOException || ex is UnauthorizedAccessException;

        /// <summary>
        /// The ErrorId for a Core code: <c>&lt;Command&gt;&lt;Condition&gt;</c>, e.g.
        /// <c>PublishBmadEvent</c> + <c>InvalidEventType</c>. Codes are already PascalCase and stable.
        /// </summary>
        public static string ErrorId(string errorPrefix, string code) => errorPrefix + code;

        /// <summary>The ErrorCategory for a Core error code (the table users and tests rely on).</summary>
        public static ErrorCategory CategoryFor(string code, FailureKind kind)
        {
            switch (code)
            {
                case ErrorCodes.InvalidData:
                case ErrorCodes.DataNotObject:
                case ErrorCodes.DataTooDeep:
                case ErrorCodes.InvalidUtf8:
                case ErrorCodes.EventTooLarge:
                case ErrorCodes.UnserializableData:
                    return ErrorCategory.InvalidData;
                case ErrorCodes.InvalidEventType:
                case ErrorCodes.ReservedEventType:
                case ErrorCodes.InvalidSource:
                case ErrorCodes.InvalidCorrelationId:
                case ErrorCodes.InvalidConsumerName:
                case ErrorCodes.InvalidArgument:
                    return ErrorCategory.InvalidArgument;
                case ErrorCodes.LockTimeout:
                    return ErrorCategory.ResourceBusy;
                case ErrorCodes.StoreFull:
                    return ErrorCategory.WriteError;
                case ErrorCodes.StoreIOError:
                    return ErrorCategory.ResourceUnavailable;
                case ErrorCodes.StoreUnsafePath:
                    return ErrorCategory.SecurityError;
                case ErrorCodes.StoreDamaged:
                case ErrorCodes.DamagedRecord:
                    return ErrorCategory.ReadError;
                case ErrorCodes.UnsupportedFormat:
                    return ErrorCategory.InvalidData;
                case ErrorCodes.StoreNotFound:
                    return ErrorCategory.ObjectNotFound;
                case ErrorCodes.StoreAlreadyExists:
                    return ErrorCategory.ResourceExists;
                case ErrorCodes.FileNotFound:
                    return ErrorCategory.ObjectNotFound;
                case ErrorCodes.InvalidSchema:
                    return ErrorCategory.InvalidData;
                case ErrorCodes.LegacyFileDamaged:
                    return ErrorCategory.ReadError;
                case ErrorCodes.LegacyLockFileDeleted:
                    return ErrorCategory.ResourceUnavailable;
                case ErrorCodes.InvalidBackupName:
                case ErrorCodes.InvalidBackupDestination:
                    return ErrorCategory.InvalidArgument;
                case ErrorCodes.BackupNotFound:
                    return ErrorCategory.ObjectNotFound;
                case ErrorCodes.BackupDamaged:
                    return ErrorCategory.InvalidData;
                case ErrorCodes.BackupDestinationNotWritable:
                    return ErrorCategory.PermissionDenied;
                case ErrorCodes.ConfirmationRequired:
                case ErrorCodes.SetAsideNeedsForce:
                    return ErrorCategory.InvalidOperation;
                case ErrorCodes.InvalidConfiguration:
                    return ErrorCategory.InvalidArgument;
                case ErrorCodes.MonitorAlreadyRunning:
                    return ErrorCategory.ResourceBusy;
                case ErrorCodes.OutboxPending:
                    return ErrorCategory.ResourceBusy;
                default:
                    return kind == FailureKind.InvalidInput ? ErrorCategory.InvalidArgument : ErrorCategory.NotSpecified;
            }
        }

        /// <summary>The ErrorId condition and category for any failure <see cref="IsStoreFailure"/> accepts.</summary>
        public static (string Condition, ErrorCategory Category) Describe(Exception ex)
        {
            switch (ex)
            {
                case Core.BmadGuardException bge:
                    return (bge.Code, CategoryFor(bge.Code, bge.Kind));
                case UnauthorizedAccessException _:
                    return ("AccessDenied", ErrorCategory.PermissionDenied);
                case IOException io when Core.Storage.StoreFs.IsDiskFull(io):
                    return (ErrorCodes.StoreFull, ErrorCategory.WriteError);
                case IOException _:
                    return (ErrorCodes.StoreIOError, ErrorCategory.ResourceUnavailable);
                default:
                    return ("Failed", ErrorCategory.NotSpecified);
            }
        }

        /// <summary>An ErrorRecord for a failure, with a stable ErrorId and the mapped category.</summary>
        public static ErrorRecord ToErrorRecord(Exception ex, string errorPrefix, object? target)
        {
            var (condition, category) = Describe(ex);
            // The public BmadGuard.BmadGuardException (catchable by type in a script), wrapping Core's failure.
            return new ErrorRecord(BmadGuardException.From(ex, condition), ErrorId(errorPrefix, condition), category, target);
        }

        /// <summary>True when the failure is the caller's input (one bad item: write an error and go on).</summary>
        public static bool IsInvalidInput(Exception ex) => ex is Core.BmadGuardException bge && bge.Kind == FailureKind.InvalidInput;

        // ------------------------------------------------------------------ PowerShell objects → data

        /// <summary>
        /// The draft for an event's fields. A string <paramref name="data"/> is JSON text (validated strictly
        /// by Core); anything else is an object graph made plain by <see cref="UnwrapData"/>; null is {}.
        /// </summary>
        public static EventDraft ToDraft(string type, object? data, string? source, string? correlationId)
        {
            object? plain = UnwrapData(data);
            return plain is string json
                ? EventDraft.FromJson(type, source, correlationId, json)
                : EventDraft.FromObject(type, source, correlationId, plain);
        }

        /// <summary>
        /// Makes a PowerShell value something Core's serializer understands: a PSCustomObject becomes an
        /// ordered dictionary of its properties, any other PSObject its BaseObject, a dictionary stays itself
        /// (copied only when a value inside needs unwrapping), a list becomes object[]; scalars pass through.
        /// What is left that Core cannot store (a ScriptBlock, a FileInfo, ...) is reported by Core.
        /// </summary>
        public static object? UnwrapData(object? value) => new Unwrapper().Unwrap(value, 0);

        /// <summary>One unwrap: the objects on the current path (to name a cycle) and the keys and indexes leading there.</summary>
        private sealed class Unwrapper
        {
            private readonly HashSet<object> _path = new HashSet<object>(ReferenceComparer.Instance);
            private readonly List<object> _where = new List<object>();

            public object? Unwrap(object? value, int depth)
            {
                if (value is PSObject pso)
                {
                    if (pso.BaseObject is PSCustomObject)
                    {
                        return UnwrapCustomObject(pso, depth);
                    }

                    value = pso.BaseObject;
                }

                if (value == null || value is string || value.GetType().IsPrimitive || value is decimal || value is DateTime
                    || value is DateTimeOffset || value is Guid || value is TimeSpan || value is Enum || value is Uri)
                {
                    return value;
                }

                if (depth >= MaxUnwrapDepth)
                {
                    // Too deep: hand it on unchanged and let Core name the problem (DataTooDeep).
                    return value;
                }

                Enter(value);
                try
                {
                    if (value is IDictionary dict)
                    {
                        return UnwrapDictionary(dict, depth);
                    }

                    if (value is IEnumerable list)
                    {
                        var items = new List<object?>();
                        foreach (object? item in list)
                        {
                            _where.Add(items.Count);
                            items.Add(Unwrap(item, depth + 1));
                            _where.RemoveAt(_where.Count - 1);
                        }

                        return items.ToArray();
                    }

                    return value;
                }
                finally
                {
                    _path.Remove(value);
                }
            }

            /// <summary>Puts an object on the path; meeting it again below itself is a cycle, named by where it closes.</summary>
            private void Enter(object value)
            {
                if (!_path.Add(value))
                {
                    throw new Core.BmadGuardException(ErrorCodes.UnserializableData, FailureKind.InvalidInput,
                        $"Event data refers to itself at {Where()}: that value contains itself, and a cycle cannot be stored as JSON. Break the cycle or publish a copy without the back-reference.");
                }
            }

            private string Where()
            {
                var sb = new System.Text.StringBuilder("data");
                foreach (object segment in _where)
                {
                    if (segment is int index)
                    {
                        sb.Append('[').Append(index.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(']');
                    }
                    else
                    {
                        sb.Append('.').Append(segment);
                    }
                }

                return sb.ToString();
            }

            private object UnwrapCustomObject(PSObject pso, int depth)
            {
                if (depth >= MaxUnwrapDepth)
                {
                    return pso;
                }

                Enter(pso);
                try
                {
                    var result = new OrderedDictionary(StringComparer.OrdinalIgnoreCase);
                    foreach (var property in pso.Properties)
                    {
                        _where.Add(property.Name);
                        result[property.Name] = Unwrap(property.Value, depth + 1);
                        _where.RemoveAt(_where.Count - 1);
                    }

                    return result;
                }
                finally
                {
                    _path.Remove(pso);
                }
            }

            private IDictionary UnwrapDictionary(IDictionary dict, int depth)
            {
                OrderedDictionary? copy = null;
                int index = 0;
                foreach (DictionaryEntry entry in dict)
                {
                    _where.Add(Convert.ToString(UnwrapKey(entry.Key), System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty);
                    object? plain = Unwrap(entry.Value, depth + 1);
                    _where.RemoveAt(_where.Count - 1);
                    if (copy == null && !ReferenceEquals(plain, entry.Value))
                    {
                        // A value changed: copy what came before, then continue into the copy.
                        copy = new OrderedDictionary();
                        int i = 0;
                        foreach (DictionaryEntry earlier in dict)
                        {
                            if (i++ == index)
                            {
                                break;
                            }

                            copy[UnwrapKey(earlier.Key)] = Unwrap(earlier.Value, depth + 1);
                        }
                    }

                    if (copy != null)
                    {
                        copy[UnwrapKey(entry.Key)] = plain;
                    }

                    index++;
                }

                return copy ?? dict;
            }
        }

        private static object UnwrapKey(object key) => key is PSObject p ? p.BaseObject : key;

        private sealed class ReferenceComparer : IEqualityComparer<object>
        {
            public static readonly ReferenceComparer Instance = new ReferenceComparer();

            public new bool Equals(object? x, object? y) => ReferenceEquals(x, y);

            public int GetHashCode(object obj) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
        }
    }
}
