using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Text.Json;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>backup, backups, restore: the backup commands of the integrity issue (one call into Core each).</summary>
    internal static class BackupCommands
    {
        public static void Register(RootCommand root)
        {
            root.Subcommands.Add(Backup());
            root.Subcommands.Add(Backups());
            root.Subcommands.Add(Restore());
            root.Subcommands.Add(SetAside());
        }

        private static Command SetAside()
        {
            var store = CliSupport.StoreOption();
            var putBack = new Option<string?>("--put-back") { Description = "Append the events of this kept-aside file that the log does not hold (their ids and times kept), then mark the file put back. Safe to run again after an interruption." };
            var dismiss = new Option<string?>("--dismiss") { Description = "Stop reporting this kept-aside file (renamed to ….dismissed; its bytes stay in quarantine)." };
            var lockTimeout = new Option<double>("--lock-timeout") { Description = "Seconds to wait for the writers' lock (default 10).", DefaultValueFactory = _ => 10 };
            var cmd = new Command("set-aside",
                "Lists the events restores set aside (quarantine/restore-…-kept-aside.jsonl) with how many the log does not hold, one JSON line per file; or puts a file's events back, or dismisses it.")
            {
                store, putBack, dismiss, lockTimeout,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string root = CliSupport.ResolveStore(parse.GetValue(store));
                string? back = parse.GetValue(putBack), drop = parse.GetValue(dismiss);
                if (back != null && drop != null)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "Give --put-back NAME or --dismiss NAME, not both. Nothing was changed.");
                }

                var timeout = TimeSpan.FromSeconds(parse.GetValue(lockTimeout));
                using var signal = CliSupport.CancelOnSignal();
                if (back != null)
                {
                    var r = SetAsideEvents.PutBack(root, back, timeout, signal.Token);
                    WriteLine(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("file", r.File);
                        w.WriteNumber("appended", r.Appended);
                        w.WriteNumber("alreadyInLog", r.AlreadyInLog);
                        w.WriteString("renamedTo", r.DoneFile);
                        if (r.Records.Count > 0)
                        {
                            w.WriteNumber("firstSeq", r.Records[0].Seq);
                            w.WriteNumber("lastSeq", r.Records[r.Records.Count - 1].Seq);
                        }

                        w.WriteEndObject();
                    });
                    return ExitCodes.Success;
                }

                if (drop != null)
                {
                    string done = SetAsideEvents.Dismiss(root, drop, timeout, signal.Token);
                    WriteLine(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("file", Path.Combine(root, StorePaths.QuarantineDirName, drop));
                        w.WriteString("renamedTo", done);
                        w.WriteEndObject();
                    });
                    return ExitCodes.Success;
                }

                foreach (var f in SetAsideEvents.List(root, signal.Token))
                {
                    WriteLine(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("name", f.Name);
                        w.WriteString("path", f.Path);
                        w.WriteNumber("events", f.Events);
                        w.WriteNumber("notInLog", f.Missing);
                        w.WriteEndObject();
                    });
                }

                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command Backup()
        {
            var store = CliSupport.StoreOption();
            var dest = new Option<string?>("--dest") { Description = "Where to put the backup (default <store>/backups); another volume is best." };
            var keepLast = new Option<int?>("--keep-last") { Description = "After the backup, keep only the last N verified backups (and the newest always)." };
            var keepDaily = new Option<int?>("--keep-daily") { Description = "After the backup, keep the newest backup of each of the last N days that have one." };
            var keepSafety = new Option<int?>("--keep-safety")
            {
                Description = "After the backup, keep only the newest N safety backups (made by restore); without it none is removed. --keep-last/--keep-daily never remove safety backups.",
            };
            var cmd = new Command("backup", "Backs up a store while publishers keep publishing; reads the backup back and verifies it. Prints the backup as JSON. " +
                                            "Retention never removes the backup just made, the newest verified one, or the newest safety backup; newest means by the log (last seq, then writer epoch), not the clock.")
            {
                store, dest, keepLast, keepDaily, keepSafety,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                var options = new BackupOptions { Destination = parse.GetValue(dest) };
                int? last = parse.GetValue(keepLast), daily = parse.GetValue(keepDaily), safety = parse.GetValue(keepSafety);
                if (last.HasValue || daily.HasValue || safety.HasValue)
                {
                    options.Retention = new RetentionPolicy { KeepLast = last, KeepDaily = daily, KeepSafety = safety };
                }

                using var signal = CliSupport.CancelOnSignal();
                var info = StoreBackup.Create(CliSupport.ResolveStore(parse.GetValue(store)), options, null, signal.Token);
                WriteLine(w => WriteBackup(w, info));
                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command Backups()
        {
            var store = CliSupport.StoreOption();
            var cmd = new Command("backups", "Lists a store's backups, oldest first, one JSON line each, with their verification state (manifest checksum, files and sizes).")
            {
                store,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                using var signal = CliSupport.CancelOnSignal();
                foreach (var b in BackupCatalog.List(CliSupport.ResolveStore(parse.GetValue(store)), null, BackupCheck.Quick, null, signal.Token))
                {
                    WriteLine(w => WriteBackup(w, b));
                }

                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command Restore()
        {
            var store = CliSupport.StoreOption();
            var latest = new Option<bool>("--latest") { Description = "Restore the newest verified backup." };
            var backup = new Option<string?>("--backup") { Description = "Restore the backup with this name (from 'bmadguard backups')." };
            var at = new Option<string?>("--at") { Description = "Restore the state at this time (ISO 8601): the first backup taken at or after it, keeping only events up to it." };
            var seq = new Option<long?>("--seq") { Description = "Restore up to and including this seq." };
            var force = new Option<bool>("--force")
            {
                Description = "Do not ask for confirmation (required when stdin is not a terminal), and restore even when that leaves fewer events than the log holds now (they are set aside; without --force such a restore is refused, exit 2, naming how many).",
            };
            var cmd = new Command("restore",
                "Restores a store from a verified backup, after a safety backup of the current state; current events not in the restored state are kept aside in a file the JSON report names.")
            {
                store, latest, backup, at, seq, force,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                var request = new RestoreRequest
                {
                    Latest = parse.GetValue(latest),
                    BackupName = parse.GetValue(backup),
                    Sequence = parse.GetValue(seq),
                    Force = parse.GetValue(force),
                };
                string? atText = parse.GetValue(at);
                if (atText != null)
                {
                    if (!DateTimeOffset.TryParse(atText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
                    {
                        throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                            $"--at '{atText}' is not a date and time; use ISO 8601, e.g. 2026-11-22T02:17:00Z.");
                    }

                    request.At = parsed;
                }

                string storeRoot = CliSupport.ResolveStore(parse.GetValue(store));
                StoreRestore.Validate(storeRoot, request);
                if (!parse.GetValue(force))
                {
                    if (Console.IsInputRedirected)
                    {
                        throw new BmadGuardException(ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput,
                            "restore replaces the store's segments and stdin is not a terminal, so there is nobody to confirm: pass --force. Nothing was changed.");
                    }

                    Console.Error.Write($"Restore '{storeRoot}'? A safety backup is made first and newer events are kept aside. [y/N] ");
                    string? answer = Console.ReadLine();
                    if (!string.Equals(answer?.Trim(), "y", StringComparison.OrdinalIgnoreCase) && !string.Equals(answer?.Trim(), "yes", StringComparison.OrdinalIgnoreCase))
                    {
                        throw new BmadGuardException(ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput, "Restore not confirmed. Nothing was changed.");
                    }
                }

                using var signal = CliSupport.CancelOnSignal();
                RestoreReport report;
                try
                {
                    report = StoreRestore.Restore(storeRoot, request, null, signal.Token);
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.SetAsideNeedsForce)
                {
                    throw new BmadGuardException(ex.Code, ex.Kind, ex.Message + " To restore anyway and set them aside, run the same command with --force.", ex.Path, ex.Offset, ex);
                }

                foreach (var notice in report.Notices)
                {
                    Console.Error.WriteLine("bmadguard: notice: " + notice);
                }

                WriteLine(w => WriteReport(w, report));
                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static void WriteLine(Action<Utf8JsonWriter> write)
        {
            using var stdout = CliSupport.StdOut();
            using (var w = CliSupport.JsonWriter(stdout))
            {
                write(w);
            }

            stdout.WriteByte((byte)'\n');
            stdout.Flush();
        }

        private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("o", CultureInfo.InvariantCulture);

        internal static void WriteBackup(Utf8JsonWriter w, BackupInfo b)
        {
            w.WriteStartObject();
            w.WriteString("name", b.Name);
            w.WriteString("path", b.Path);
            w.WriteString("store", b.Store);
            w.WriteString("kind", b.Kind);
            w.WriteString("created", Time(b.Created));
            w.WriteString("consistentAt", Time(b.ConsistentAt));
            w.WriteNumber("lastSeq", b.LastSeq);
            w.WriteNumber("eventCount", b.EventCount);
            w.WriteNumber("sizeBytes", b.SizeBytes);
            w.WriteString("state", b.State.ToString());
            if (b.Reason != null)
            {
                w.WriteString("reason", b.Reason);
            }
            else
            {
                w.WriteNull("reason");
            }

            w.WriteString("check", b.Check.ToString());
            if (b.FilesCopied > 0 || b.FilesReused > 0)
            {
                w.WriteNumber("filesCopied", b.FilesCopied);
                w.WriteNumber("bytesCopied", b.BytesCopied);
                w.WriteNumber("filesReused", b.FilesReused);
                w.WriteNumber("filesLinked", b.FilesLinked);
                w.WriteNumber("bytesReused", b.BytesReused);
                if (b.ReusedFrom != null)
                {
                    w.WriteString("reusedFrom", b.ReusedFrom);
                }
            }

            w.WriteStartArray("findings");
            foreach (var f in b.Findings)
            {
                WriteFinding(w, f);
            }

            w.WriteEndArray();
            if (b.Retention != null)
            {
                w.WriteStartObject("retention");
                WriteNames(w, "kept", b.Retention.Kept);
                WriteNames(w, "removed", b.Retention.Removed);
                WriteNames(w, "skipped", b.Retention.Skipped);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        private static void WriteFinding(Utf8JsonWriter w, BackupFinding f)
        {
            w.WriteStartObject();
            w.WriteString("severity", f.Severity.ToString());
            w.WriteString("code", f.Code);
            w.WriteString("file", f.File);
            if (f.Offset.HasValue)
            {
                w.WriteNumber("offset", f.Offset.Value);
            }
            else
            {
                w.WriteNull("offset");
            }

            w.WriteString("message", f.Message);
            w.WriteEndObject();
        }

        private static void WriteNames(Utf8JsonWriter w, string name, IEnumerable<string> values)
        {
            w.WriteStartArray(name);
            foreach (var v in values)
            {
                w.WriteStringValue(v);
            }

            w.WriteEndArray();
        }

        private static void WriteReport(Utf8JsonWriter w, RestoreReport r)
        {
            w.WriteStartObject();
            w.WriteString("store", r.Store);
            w.WriteString("mode", r.Mode);
            w.WriteString("backup", r.Backup);
            w.WriteString("backupPath", r.BackupPath);
            w.WriteString("safetyBackup", r.SafetyBackup);
            w.WriteString("safetyBackupPath", r.SafetyBackupPath);
            w.WriteNumber("eventsBefore", r.EventsBefore);
            if (r.LastSeqBefore.HasValue)
            {
                w.WriteNumber("lastSeqBefore", r.LastSeqBefore.Value);
            }
            else
            {
                w.WriteNull("lastSeqBefore");
            }

            w.WriteNumber("eventsAfter", r.EventsAfter);
            w.WriteNumber("restoredLastSeq", r.RestoredLastSeq);
            w.WriteNumber("lastSeqAfter", r.LastSeqAfter);
            w.WriteNumber("rolledBack", r.RolledBack);
            w.WriteNumber("putBack", r.PutBack);
            w.WriteNumber("keptAside", r.KeptAside);
            if (r.KeptAsideFile != null)
            {
                w.WriteString("keptAsideFile", r.KeptAsideFile);
            }
            else
            {
                w.WriteNull("keptAsideFile");
            }

            if (r.ReplacedSegments != null)
            {
                w.WriteString("replacedSegments", r.ReplacedSegments);
            }
            else
            {
                w.WriteNull("replacedSegments");
            }

            WriteNames(w, "consumersRewound", r.ConsumersRewound);
            w.WriteStartArray("currentDamage");
            foreach (var f in r.CurrentDamage)
            {
                WriteFinding(w, f);
            }

            w.WriteEndArray();
            WriteNames(w, "notices", r.Notices);
            w.WriteNumber("durationMs", r.DurationMilliseconds);
            w.WriteStartObject("phaseEndMs");
            foreach (var kv in r.PhaseEndMilliseconds)
            {
                w.WriteNumber(kv.Key, kv.Value);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }
    }
}
