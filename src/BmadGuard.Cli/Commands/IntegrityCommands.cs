using System;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using BmadGuard.Core;
using BmadGuard.Core.Integration;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>
    /// verify, repair, import-legacy, export, publish-legacy: integrity of stores and of the agents' legacy
    /// JSON bus files (issue 3). verify/repair/import-legacy flags are the contract.
    /// </summary>
    internal static class IntegrityCommands
    {
        public static void Register(RootCommand root)
        {
            root.Subcommands.Add(Verify());
            root.Subcommands.Add(Repair());
            root.Subcommands.Add(ImportLegacy());
            root.Subcommands.Add(Export());
            root.Subcommands.Add(PublishLegacy());
        }

        private static BmadGuardException Usage(string message) => new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, message);

        private static Option<string?> FileOption(string description) => new Option<string?>("--file") { Description = description };

        private static Option<double> LockTimeoutOption(double seconds) => new Option<double>("--lock-timeout")
        {
            Description = "Seconds to wait for the lock (the store's writers' lock, or <file>.lock for a legacy file).",
            DefaultValueFactory = _ => seconds,
        };

        private static TimeSpan Seconds(double s)
        {
            if (s < 0 || double.IsNaN(s) || double.IsInfinity(s))
            {
                throw Usage("--lock-timeout must be 0 or more seconds.");
            }

            return TimeSpan.FromSeconds(s);
        }

        /// <summary>Exactly one of --store / --file.</summary>
        private static void OneTarget(string? store, string? file, string command)
        {
            if ((store == null) == (file == null))
            {
                throw Usage($"{command} needs exactly one of --store DIR or --file F.");
            }
        }

        private static void PrintJson(Action<Utf8JsonWriter> write)
        {
            using var stdout = CliSupport.StdOut();
            using (var w = CliSupport.JsonWriter(stdout))
            {
                write(w);
            }

            stdout.WriteByte((byte)'\n');
        }

        private static Command Verify()
        {
            var store = new Option<string?>("--store") { Description = "Verify this store deeply (every record's checksum, seqs, headers, settings, consumers, quarantine)." };
            var file = FileOption("Verify this JSON file (strict RFC 8259; the legacy bus shape unless --schema or --json-only).");
            var schema = new Option<string?>("--schema") { Description = "With --file: check the file against this JSON Schema instead of the legacy bus shape." };
            var jsonOnly = new Option<bool>("--json-only") { Description = "With --file: only check that it is strict JSON (no shape)." };
            var quiet = new Option<bool>("--quiet") { Description = "Print only true or false." };
            var cmd = new Command("verify", "Checks a store or a JSON file and prints the report as JSON. Exit 0 healthy, 1 damaged, 2 usage.")
            {
                store, file, schema, jsonOnly, quiet,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string? s = parse.GetValue(store), f = parse.GetValue(file), sc = parse.GetValue(schema);
                OneTarget(s, f, "verify");
                if (f == null && (sc != null || parse.GetValue(jsonOnly)))
                {
                    throw Usage("--schema and --json-only go with --file.");
                }

                if (sc != null && parse.GetValue(jsonOnly))
                {
                    throw Usage("Give --schema or --json-only, not both.");
                }

                IntegrityReport report;
                using (var signal = CliSupport.CancelOnSignal())
                {
                    report = s != null
                        ? StoreVerifier.Verify(Path.GetFullPath(s), null, signal.Token)
                        : JsonFileVerifier.Verify(f!, new JsonFileVerifyOptions
                        {
                            Check = sc != null ? JsonFileCheck.Schema : parse.GetValue(jsonOnly) ? JsonFileCheck.JsonOnly : JsonFileCheck.LegacyBus,
                            SchemaPath = sc,
                        }, signal.Token);
                }

                if (parse.GetValue(quiet))
                {
                    Console.Out.WriteLine(report.Healthy ? "true" : "false");
                }
                else
                {
                    PrintJson(report.WriteJson);
                }

                return report.Healthy ? ExitCodes.Success : ExitCodes.StoreProblem;
            }));
            return cmd;
        }

        private static Command Repair()
        {
            var store = new Option<string?>("--store") { Description = "Repair this store: cut a torn tail, rebuild damaged segments, quarantine damaged bytes; seqs only a backup still holds are restored from the newest verified backup that covers them." };
            var file = FileOption("Salvage this legacy bus file: every complete event is kept, the damaged original goes to .bmadguard-quarantine/.");
            var lockTimeout = LockTimeoutOption(30);
            var cmd = new Command("repair", "Repairs a store or a legacy JSON bus file and prints what it did as JSON. Exit 0 when the result is healthy, 1 when damage remains.")
            {
                store, file, lockTimeout,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string? s = parse.GetValue(store), f = parse.GetValue(file);
                OneTarget(s, f, "repair");
                var timeout = Seconds(parse.GetValue(lockTimeout));
                using var signal = CliSupport.CancelOnSignal();
                if (s != null)
                {
                    var report = StoreRepair.Repair(Path.GetFullPath(s), BackupRecovery.RepairOptions(timeout), signal.Token);
                    PrintJson(report.WriteJson);
                    return report.Healthy ? ExitCodes.Success : ExitCodes.StoreProblem;
                }

                var result = LegacyBusFile.Repair(f!, new LegacyWriteOptions { LockTimeout = timeout }, signal.Token);
                PrintJson(result.WriteJson);
                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command ImportLegacy()
        {
            var store = new Option<string?>("--store") { Description = "The store to import into (it must exist: bmadguard init)." };
            var file = FileOption("The legacy bus file ({\"events\":[…]}); a damaged one is salvaged in memory, the file is not changed.");
            var source = new Option<string?>("--source") { Description = "The source recorded on imported events (default 'legacy')." };
            var zone = new Option<string?>("--naive-timezone") { Description = "Time zone of naive legacy timestamps (default UTC), e.g. Europe/Berlin." };
            var lockTimeout = LockTimeoutOption(10);
            var recover = new Option<bool>("--recover")
            {
                Description = "Also gather what the old bus lost: <file>.backup, BmadGuard's generations, leftover temp copies, quarantined copies (beside the file and in the store) and the monitor's known-good copy; events already in the store are skipped. Prints a count per source.",
            };
            var cmd = new Command("import-legacy", "Copies a legacy bus file into a store, keeping time, type and data. Running it again imports nothing twice. Prints a JSON summary.")
            {
                store, file, source, zone, lockTimeout, recover,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string? s = parse.GetValue(store), f = parse.GetValue(file);
                if (s == null || f == null)
                {
                    throw Usage("import-legacy needs --store DIR and --file F.");
                }

                var options = new LegacyImportOptions { LockTimeout = Seconds(parse.GetValue(lockTimeout)) };
                if (parse.GetValue(source) is string src)
                {
                    options.Source = src;
                }

                if (parse.GetValue(zone) is string z)
                {
                    try
                    {
                        options.NaiveTimeZone = TimeZoneInfo.FindSystemTimeZoneById(z);
                    }
                    catch (Exception ex) when (ex is TimeZoneNotFoundException || ex is InvalidTimeZoneException)
                    {
                        throw Usage($"Unknown time zone '{z}'.");
                    }
                }

                if (parse.GetValue(recover))
                {
                    using var into = StoreCommands.OpenStore(s, options.LockTimeout.TotalSeconds);
                    using var cancel = CliSupport.CancelOnSignal();
                    var results = LegacyTransfer.Recover(into, f, options, cancel.Token);
                    PrintJson(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("file", Path.GetFullPath(f));
                        w.WriteString("store", into.Root);
                        int imported = 0, already = 0, read = 0;
                        foreach (var r in results)
                        {
                            imported += r.Imported;
                            already += r.AlreadyPresent;
                            read += r.EventsInFile;
                        }

                        w.WriteNumber("sourcesRead", results.Count);
                        w.WriteNumber("eventsRead", read);
                        w.WriteNumber("imported", imported);
                        w.WriteNumber("alreadyPresent", already);
                        w.WriteStartArray("sources");
                        foreach (var r in results)
                        {
                            r.WriteJson(w);
                        }

                        w.WriteEndArray();
                        w.WriteEndObject();
                    });
                    return ExitCodes.Success;
                }

                LegacyFiles.RequireFile(f, "legacy bus file");
                using var target = StoreCommands.OpenStore(s, options.LockTimeout.TotalSeconds);
                using var signal = CliSupport.CancelOnSignal();
                var result = LegacyTransfer.Import(target, f, options, signal.Token);
                PrintJson(result.WriteJson);
                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command Export()
        {
            var store = CliSupport.StoreOption();
            var format = new Option<string>("--format") { Description = "legacy ({\"events\":[…]}) or ndjson (one event per line).", DefaultValueFactory = _ => "legacy" };
            var output = new Option<string?>("--out") { Description = "Write to this file (atomically) instead of standard output." };
            var type = new Option<string?>("--type") { Description = "Only events of this type (wildcards * and ?)." };
            var after = new Option<long?>("--after") { Description = "Only events with seq greater than this." };
            var cmd = new Command("export", "Writes a store's events in the legacy bus shape or as NDJSON, for older readers.")
            {
                store, format, output, type, after,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string fmt = parse.GetValue(format) ?? "legacy";
                ExportFormat ef = fmt.Equals("legacy", StringComparison.OrdinalIgnoreCase) ? ExportFormat.Legacy
                    : fmt.Equals("ndjson", StringComparison.OrdinalIgnoreCase) ? ExportFormat.Ndjson
                    : throw Usage($"--format must be legacy or ndjson, not '{fmt}'.");
                var query = new EventQuery { Type = parse.GetValue(type), After = parse.GetValue(after) };
                using var s = StoreCommands.OpenStore(parse.GetValue(store));
                using var signal = CliSupport.CancelOnSignal();
                string? o = parse.GetValue(output);
                if (o != null)
                {
                    long n = LegacyTransfer.ExportToFile(s, query, o, ef, null, signal.Token);
                    PrintJson(w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("file", Path.GetFullPath(o));
                        w.WriteString("format", ef.ToString().ToLowerInvariant());
                        w.WriteNumber("events", n);
                        w.WriteEndObject();
                    });
                    return ExitCodes.Success;
                }

                using var stdout = CliSupport.StdOut();
                LegacyTransfer.Export(s, query, stdout, ef, signal.Token);
                if (ef == ExportFormat.Legacy)
                {
                    stdout.WriteByte((byte)'\n');
                }

                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command PublishLegacy()
        {
            var file = FileOption("The legacy bus file to append to (created when missing).");
            var type = new Option<string?>("--type") { Description = "The event name (the legacy \"event\" field), e.g. story_created." };
            var data = new Option<string?>("--data") { Description = "The event's data: a JSON object (default {})." };
            var keep = new Option<int>("--keep") { Description = "Backup generations kept in .bmadguard-generations/ (default 20).", DefaultValueFactory = _ => LegacyFiles.DefaultKeepGenerations };
            var lockTimeout = LockTimeoutOption(10);
            var cmd = new Command("publish-legacy", "Appends an event to a legacy bus file under the agents' lock (<file>.lock), by atomic replace, after a timestamped backup generation. Prints the result as JSON.")
            {
                file, type, data, keep, lockTimeout,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string? f = parse.GetValue(file), t = parse.GetValue(type);
                if (f == null || t == null)
                {
                    throw Usage("publish-legacy needs --file F and --type T.");
                }

                LegacyPublishResult result;
                try
                {
                    result = LegacyBusFile.Publish(f, t, parse.GetValue(data), new LegacyWriteOptions
                    {
                        KeepGenerations = parse.GetValue(keep),
                        LockTimeout = Seconds(parse.GetValue(lockTimeout)),
                    });
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LegacyLockFileDeleted)
                {
                    throw new BmadGuardException(ex.Code, ex.Kind, ex.Message + " Fix: migrate the agents to a store (bmadguard import-legacy --store S --file F, then the drop-in bus;"
                        + " see docs/migrating-bmad-agents.md), or make the bus keep its lock file (remove the deletion of <file>.lock from its file_lock), then publish again.", ex.Path, inner: ex);
                }

                PrintJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("file", result.Path);
                    w.WriteString("timestamp", result.Timestamp);
                    w.WriteString("event", result.Event);
                    w.WritePropertyName("data");
                    using (var doc = JsonDocument.Parse(result.DataJson))
                    {
                        doc.RootElement.WriteTo(w);
                    }

                    w.WriteNumber("events", result.EventCount);
                    w.WriteBoolean("created", result.Created);
                    if (result.GenerationPath != null)
                    {
                        w.WriteString("generation", result.GenerationPath);
                    }

                    w.WriteNumber("generationsRemoved", result.RemovedGenerations.Count);
                    w.WriteEndObject();
                });
                return ExitCodes.Success;
            }));
            return cmd;
        }
    }
}
