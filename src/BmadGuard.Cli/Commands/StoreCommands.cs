using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>init, publish, get, stats: the store's commands (the CLI contract of the store issue).</summary>
    internal static class StoreCommands
    {
        public static void Register(RootCommand root)
        {
            root.Subcommands.Add(Init());
            root.Subcommands.Add(Publish());
            root.Subcommands.Add(Get());
            root.Subcommands.Add(Stats());
        }

        private static Option<double> LockTimeoutOption() => new Option<double>("--lock-timeout")
        {
            Description = "Seconds to wait for the writers' lock before failing (exit 1).",
            DefaultValueFactory = _ => StoreLock.DefaultTimeout.TotalSeconds,
        };

        internal static FileEventStore OpenStore(string? store, double lockTimeoutSeconds = 5)
        {
            if (lockTimeoutSeconds < 0 || double.IsNaN(lockTimeoutSeconds))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "--lock-timeout must be 0 or more seconds.");
            }

            var s = FileEventStore.Open(CliSupport.ResolveStore(store), new StoreOpenOptions { LockTimeout = TimeSpan.FromSeconds(lockTimeoutSeconds) });
            CliSupport.PrintNotices(s);
            return s;
        }

        private static Command Init()
        {
            var store = CliSupport.StoreOption();
            var segmentMax = new Option<long?>("--segment-max-bytes") { Description = "Roll over to a new segment at this size (default 64 MiB)." };
            var maxEvent = new Option<int?>("--max-event-bytes") { Description = "The largest event accepted, in bytes (default 1 MiB)." };
            var maxDepth = new Option<int?>("--max-depth") { Description = "The deepest nesting accepted in data (default 64)." };
            var cmd = new Command("init", "Creates a store (or confirms the one already there). Prints {\"store\",\"created\"}.")
            {
                store, segmentMax, maxEvent, maxDepth,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                var settings = new StoreSettings();
                if (parse.GetValue(segmentMax) is long sm)
                {
                    settings.SegmentMaxBytes = sm;
                }

                if (parse.GetValue(maxEvent) is int me)
                {
                    settings.MaxEventBytes = me;
                }

                if (parse.GetValue(maxDepth) is int md)
                {
                    settings.MaxDepth = md;
                }

                using var s = FileEventStore.Initialize(CliSupport.ResolveStore(parse.GetValue(store)), settings, null, out bool created);
                CliSupport.PrintNotices(s);
                using var stdout = CliSupport.StdOut();
                using (var w = CliSupport.JsonWriter(stdout))
                {
                    w.WriteStartObject();
                    w.WriteString("store", s.Root);
                    w.WriteBoolean("created", created);
                    w.WriteEndObject();
                }

                stdout.WriteByte((byte)'\n');
                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static Command Publish()
        {
            var store = CliSupport.StoreOption();
            var type = new Option<string?>("--type") { Description = "The event type, e.g. story.created." };
            var source = new Option<string?>("--source") { Description = "The publishing agent (default 'unknown')." };
            var correlation = new Option<string?>("--correlation-id") { Description = "Ties related events together." };
            var data = new Option<string?>("--data") { Description = "The event's data: a JSON object." };
            var dataFile = new Option<FileInfo?>("--data-file") { Description = "A file holding the event's data as a JSON object." };
            var stdin = new Option<bool>("--stdin")
            {
                Description = "Read events as NDJSON from standard input: {\"type\",\"source\",\"correlationId\",\"data\"} a line. "
                    + "Lines are taken in order; each good line's event is printed as one JSON line, in input order, only after it is fsynced. "
                    + "A bad line is written nowhere, reported on stderr as 'bmadguard: <Code>: line <N>: <message>', and the next lines still go; "
                    + "the exit code is then 2 (0 when every line was good). A store problem stops the run with exit 1: what was printed is durable, "
                    + "nothing after it was written. Retry only the lines that were not acknowledged. "
                    + "A line may be at most the store's largest event plus 64 KiB; a UTF-8 BOM at the start is skipped.",
            };
            var lockTimeout = LockTimeoutOption();
            var spool = new Option<bool>("--spool") { Description = "When the store refuses (lock timeout, disk full, damage), spool the events to the durable outbox instead; the monitor replays them. Spooled events print {\"spooled\":true,\"id\",...}." };
            var cmd = new Command("publish", "Publishes events. Each is printed as one JSON line only once it is durable (fsynced).")
            {
                store, type, source, correlation, data, dataFile, stdin, lockTimeout, spool,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                bool fromStdin = parse.GetValue(stdin);
                string? t = parse.GetValue(type);
                string? d = parse.GetValue(data);
                FileInfo? f = parse.GetValue(dataFile);
                if (fromStdin && (t != null || d != null || f != null || parse.GetValue(source) != null || parse.GetValue(correlation) != null))
                {
                    throw Usage("--stdin takes events from standard input; it cannot be combined with --type, --source, --correlation-id, --data or --data-file.");
                }

                if (!fromStdin && t == null)
                {
                    throw Usage("publish needs --type (or --stdin).");
                }

                if (d != null && f != null)
                {
                    throw Usage("Give the data once: --data or --data-file, not both.");
                }

                if (fromStdin && parse.GetValue(spool))
                {
                    return StdinPublish.PublishOrSpool(parse.GetValue(store), parse.GetValue(lockTimeout));
                }

                if (fromStdin)
                {
                    using var s = OpenStore(parse.GetValue(store), parse.GetValue(lockTimeout));
                    int seen = s.Notices.Count;
                    try
                    {
                        return StdinPublish.Publish(s);
                    }
                    finally
                    {
                        CliSupport.PrintNotices(s, seen); // e.g. a torn tail another writer left, cut while publishing
                    }
                }

                EventDraft draft;
                if (f != null)
                {
                    byte[] bytes;
                    try
                    {
                        // Memory stays bounded by the store's event limit: a file far larger than any storable event
                        // (room left for indentation and escapes) is refused before it is read.
                        long cap = 4L * FileEventStore.ReadLimits(CliSupport.ResolveStore(parse.GetValue(store))).MaxEventBytes + StdinPublish.LineSlackBytes;
                        long length = new FileInfo(f.FullName).Length;
                        if (length > cap)
                        {
                            throw new BmadGuardException(ErrorCodes.EventTooLarge, FailureKind.InvalidInput,
                                $"--data-file '{f.FullName}' is {length} bytes, over the {cap} bytes the store's largest event could take even with indentation; it was not read.");
                        }

                        bytes = File.ReadAllBytes(f.FullName);
                    }
                    catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                    {
                        throw Usage($"Cannot read --data-file '{f.FullName}': {ex.Message}");
                    }

                    draft = EventDraft.FromJson(t!, parse.GetValue(source), parse.GetValue(correlation), StripBom(bytes));
                }
                else
                {
                    CliSupport.ThrowIfArgumentNotUtf8(d, "--data");
                    draft = EventDraft.FromJson(t!, parse.GetValue(source), parse.GetValue(correlation), d);
                }

                if (parse.GetValue(spool))
                {
                    return MonitorCommands.PublishOrSpoolCli(parse.GetValue(store), new[] { draft }, parse.GetValue(lockTimeout));
                }

                using (var s = OpenStore(parse.GetValue(store), parse.GetValue(lockTimeout)))
                {
                    int seen = s.Notices.Count;
                    try
                    {
                        using var stdout = CliSupport.StdOut();
                        s.Publish(new[] { draft }, r => r.WriteJsonLine(stdout));
                        stdout.Flush();
                    }
                    finally
                    {
                        CliSupport.PrintNotices(s, seen); // e.g. a torn tail another writer left, cut while publishing
                    }
                }

                return ExitCodes.Success;
            }));
            return cmd;
        }

        private static ReadOnlyMemory<byte> StripBom(byte[] bytes)
            => bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? new ReadOnlyMemory<byte>(bytes, 3, bytes.Length - 3) : bytes;

        private static BmadGuardException Usage(string message) => new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, message);

        private static Command Get()
        {
            var store = CliSupport.StoreOption();
            var type = new Option<string?>("--type") { Description = "Only this type; wildcards * and ? allowed (story.*)." };
            var source = new Option<string?>("--source") { Description = "Only this source; wildcards allowed." };
            var after = new Option<long?>("--after") { Description = "Only events with seq greater than this." };
            var since = new Option<string?>("--since") { Description = "Only events at or after this ISO 8601 time." };
            var last = new Option<int?>("--last") { Description = "Only the last N matching events (not with --consumer)." };
            var follow = new Option<bool>("--follow") { Description = "Keep streaming new events until Ctrl+C or SIGTERM." };
            var consumer = new Option<string?>("--consumer") { Description = "A named consumer: only what it has not read yet; its position is kept in the store, one per --type/--source filter. Not with --last." };
            var cmd = new Command("get", "Prints events as JSON lines, in seq order. A damaged record does not hide the rest: every intact event is printed, " +
                                         "the damaged seqs are named on stderr (DamagedRecord) and the exit code is 1; a consumer stops just before the damage.")
            {
                store, type, source, after, since, last, follow, consumer,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                var query = new EventQuery
                {
                    Type = parse.GetValue(type),
                    Source = parse.GetValue(source),
                    After = parse.GetValue(after),
                    Last = parse.GetValue(last),
                    Consumer = parse.GetValue(consumer),
                };
                string? sinceText = parse.GetValue(since);
                if (sinceText != null)
                {
                    if (!DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var sinceValue))
                    {
                        throw Usage($"--since '{sinceText}' is not an ISO 8601 time (for example 2026-11-22T08:00:00Z).");
                    }

                    query.Since = sinceValue;
                }

                if (query.Consumer != null)
                {
                    FileEventStore.ValidateConsumerName(query.Consumer);
                    FileEventStore.ValidateConsumerQuery(query);
                }

                bool following = parse.GetValue(follow);
                using var s = OpenStore(parse.GetValue(store));
                using var cts = CliSupport.CancelOnSignal();
                using var stdout = new BufferedStream(CliSupport.StdOut(), 1 << 16);

                // A consumer's position is moved here, not by the store's reader: only past lines that have been
                // flushed to stdout (at-least-once delivery: a crash before the commit redelivers, never skips).
                // With --type/--source the position is the consumer's for that filter (FileEventStore.ConsumerKey).
                string? consumerName = query.Consumer == null ? null : FileEventStore.ConsumerKey(query.Consumer, query.Type, query.Source);
                query.Consumer = null;
                if (consumerName != null)
                {
                    query.After = Math.Max(query.After ?? 0, s.GetConsumerPosition(consumerName));
                }

                // Damaged records: the readable events are printed, the damage goes to stderr after the events before
                // it, and the exit code is 1. A consumer stops before the damage (its position never passes it).
                int exitCode = ExitCodes.Success;
                bool stopAtDamage = false;
                query.OnDamage = ex =>
                {
                    stdout.Flush();
                    Console.Error.WriteLine($"bmadguard: {ex.Code}: {ex.Message}");
                    exitCode = ExitCodes.StoreProblem;
                    stopAtDamage = consumerName != null;
                };

                long written = 0, committed = 0;
                var sinceFlush = System.Diagnostics.Stopwatch.StartNew();
                void FlushAndCommit()
                {
                    stdout.Flush();
                    if (consumerName != null && written > committed)
                    {
                        s.CommitConsumer(consumerName, written);
                        committed = written;
                    }

                    sinceFlush.Restart();
                }

                var events = following ? s.Follow(query, TimeSpan.FromMilliseconds(200), cts.Token) : s.Read(query, cts.Token);
                foreach (var r in events)
                {
                    if (stopAtDamage)
                    {
                        break;
                    }

                    r.WriteJsonLine(stdout);
                    written = r.Seq;
                    if (following || sinceFlush.ElapsedMilliseconds >= 200)
                    {
                        FlushAndCommit();
                    }
                }

                FlushAndCommit();
                return exitCode;
            }));
            return cmd;
        }

        private static Command Stats()
        {
            var store = CliSupport.StoreOption();
            var cmd = new Command("stats", "Prints the store's statistics as one JSON object.") { store };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                using var s = OpenStore(parse.GetValue(store));
                var st = s.GetStatistics();
                using var stdout = CliSupport.StdOut();
                using (var w = CliSupport.JsonWriter(stdout))
                {
                    WriteStatistics(w, st);
                }

                stdout.WriteByte((byte)'\n');
                return ExitCodes.Success;
            }));
            return cmd;
        }

        internal static void WriteStatistics(Utf8JsonWriter w, StoreStatistics st)
        {
            w.WriteStartObject();
            w.WriteString("store", st.Store);
            w.WriteNumber("totalEvents", st.TotalEvents);
            WriteNullable(w, "firstSeq", st.FirstSeq);
            WriteNullable(w, "lastSeq", st.LastSeq);
            WriteNullable(w, "firstTimestamp", st.FirstTimestamp);
            WriteNullable(w, "lastTimestamp", st.LastTimestamp);
            w.WriteStartObject("byType");
            foreach (var kv in st.ByType)
            {
                w.WriteNumber(kv.Key, kv.Value);
            }

            w.WriteEndObject();
            w.WriteStartObject("bySource");
            foreach (var kv in st.BySource)
            {
                w.WriteNumber(kv.Key, kv.Value);
            }

            w.WriteEndObject();
            w.WriteNumber("segments", st.Segments);
            w.WriteNumber("segmentBytes", st.SegmentBytes);
            w.WriteNumber("bytesOnDisk", st.BytesOnDisk);
            w.WriteNumber("quarantineFiles", st.QuarantineFiles);
            w.WriteEndObject();
        }

        private static void WriteNullable(Utf8JsonWriter w, string name, long? value)
        {
            if (value.HasValue)
            {
                w.WriteNumber(name, value.Value);
            }
            else
            {
                w.WriteNull(name);
            }
        }

        private static void WriteNullable(Utf8JsonWriter w, string name, DateTimeOffset? value)
        {
            if (value.HasValue)
            {
                w.WriteString(name, value.Value.ToString("o", CultureInfo.InvariantCulture));
            }
            else
            {
                w.WriteNull(name);
            }
        }
    }
}
