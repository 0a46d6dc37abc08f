using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>
    /// <c>bmadguard publish --stdin</c>: NDJSON events, one a line. The batch contract (README, <c>publish --help</c>):
    /// lines are taken in order; each good line's event is printed on stdout as one JSON line, in input order, only
    /// after the fsync that covers it (lines read together share one fsync); a bad line is written nowhere, reported
    /// on stderr as <c>bmadguard: &lt;Code&gt;: line &lt;N&gt;: &lt;message&gt;</c>, and the next lines still go; at
    /// EOF the exit code is 2 if any line was bad, else 0. A store problem (exit 1) stops the run: what was printed
    /// is durable, nothing after it is written. So a caller retries exactly the lines that were not acknowledged.
    /// Memory is bounded by the store's event size limit: a line longer than <see cref="MaxLineBytes"/> is skipped
    /// to its newline without being held, and reported as EventTooLarge.
    /// </summary>
    internal static class StdinPublish
    {
        /// <summary>Room on a line for the envelope around the data (type, source, ids, spacing) beyond the event limit.</summary>
        internal const int LineSlackBytes = 64 * 1024;

        /// <summary>At most this many lines share one batch (one lock, one fsync).</summary>
        private const int MaxBatch = 8192;

        /// <summary>At most this many bytes of lines wait between the reader and the writer (plus one line).</summary>
        private const long MaxQueuedBytes = 8L * 1024 * 1024;

        internal static int MaxLineBytes(EventLimits limits) => limits.MaxEventBytes + LineSlackBytes;

        /// <summary>One non-blank line: its event, or why it is not one.</summary>
        internal readonly struct Item
        {
            public Item(long line, EventDraft? draft, BmadGuardException? error, int bytes)
            {
                Line = line;
                Draft = draft;
                Error = error;
                Bytes = bytes;
            }

            public long Line { get; }
            public EventDraft? Draft { get; }
            public BmadGuardException? Error { get; }
            public int Bytes { get; }
        }

        internal static void ReportBadLine(long line, BmadGuardException error)
            => Console.Error.WriteLine($"bmadguard: {error.Code}: line {line}: {error.Message}");

        /// <summary>
        /// A reader thread parses lines while this thread publishes what has accumulated as one batch (group commit)
        /// through <see cref="IEventStore.PublishEach"/>, the batch contract shared with Publish-BmadEvent.
        /// </summary>
        public static int Publish(FileEventStore store)
        {
            var queue = new BlockingCollection<Item>(boundedCapacity: MaxBatch * 2);
            var budget = new ByteBudget(MaxQueuedBytes);
            int maxLine = MaxLineBytes(store.Limits);
            var reader = Task.Run(() =>
            {
                try
                {
                    using var stdin = Console.OpenStandardInput();
                    foreach (var item in Read(stdin, maxLine))
                    {
                        budget.Take(item.Bytes);
                        queue.Add(item);
                    }
                }
                finally
                {
                    queue.CompleteAdding();
                }
            });

            bool anyBad = false;
            using var stdout = new BufferedStream(CliSupport.StdOut(), 1 << 16);
            var items = new List<Item>(MaxBatch);
            var drafts = new List<EventDraft>(MaxBatch);
            var draftItem = new List<int>(MaxBatch);
            foreach (var first in queue.GetConsumingEnumerable())
            {
                items.Clear();
                drafts.Clear();
                draftItem.Clear();
                items.Add(first);
                while (items.Count < MaxBatch && queue.TryTake(out var more))
                {
                    items.Add(more);
                }

                long bytes = 0;
                for (int i = 0; i < items.Count; i++)
                {
                    bytes += items[i].Bytes;
                    if (items[i].Draft != null)
                    {
                        drafts.Add(items[i].Draft!);
                        draftItem.Add(i);
                    }
                }

                // Acknowledgements are printed in input order after the batch's fsync; a store problem throws out
                // of here (exit 1) once the BufferedStream has been flushed by its disposal.
                var result = store.PublishEach(drafts, (_, r) => r.WriteJsonLine(stdout));
                stdout.Flush();

                var rejected = new Dictionary<int, BmadGuardException>();
                foreach (var r in result.Rejected)
                {
                    rejected[draftItem[r.Index]] = r.Error;
                }

                for (int i = 0; i < items.Count; i++)
                {
                    BmadGuardException? error = items[i].Error;
                    if (items[i].Draft != null)
                    {
                        rejected.TryGetValue(i, out error);
                    }

                    if (error != null)
                    {
                        anyBad = true;
                        ReportBadLine(items[i].Line, error);
                    }
                }

                budget.Release(bytes);
            }

            reader.GetAwaiter().GetResult();
            return anyBad ? ExitCodes.Usage : ExitCodes.Success;
        }

        /// <summary>
        /// <c>publish --stdin --spool</c>: the same per-line contract, a chunk of lines at a time through publish-or-spool.
        /// Lines are checked against the store's limits first, so a bad line is reported by its number and never
        /// fails its chunk; each chunk is published, or spooled when the store refuses.
        /// </summary>
        public static int PublishOrSpool(string? storeOption, double lockTimeoutSeconds)
        {
            string storePath = CliSupport.ResolveStore(storeOption);
            var limits = FileEventStore.ReadLimits(storePath);
            bool anyBad = false;
            var chunk = new List<EventDraft>();
            long chunkBytes = 0;
            using (var stdin = Console.OpenStandardInput())
            {
                foreach (var item in Read(stdin, MaxLineBytes(limits)))
                {
                    var error = item.Error;
                    if (item.Draft != null)
                    {
                        try
                        {
                            EventSerializer.DataJson(item.Draft, limits);
                        }
                        catch (BmadGuardException ex) when (ex.Kind == FailureKind.InvalidInput)
                        {
                            error = ex;
                        }
                    }

                    if (error != null)
                    {
                        anyBad = true;
                        ReportBadLine(item.Line, error);
                        continue;
                    }

                    chunk.Add(item.Draft!);
                    chunkBytes += item.Bytes;
                    if (chunk.Count >= MaxBatch || chunkBytes >= MaxQueuedBytes)
                    {
                        MonitorCommands.PublishOrSpoolCli(storeOption, chunk, lockTimeoutSeconds);
                        chunk.Clear();
                        chunkBytes = 0;
                    }
                }
            }

            if (chunk.Count > 0)
            {
                MonitorCommands.PublishOrSpoolCli(storeOption, chunk, lockTimeoutSeconds);
            }

            return anyBad ? ExitCodes.Usage : ExitCodes.Success;
        }

        /// <summary>
        /// The non-blank lines of <paramref name="stream"/>, each parsed. A UTF-8 BOM at the very start is skipped (as
        /// --data-file does). A line over <paramref name="maxLineBytes"/> is not held: it is read through to its
        /// newline in fixed-size chunks and comes back as an EventTooLarge error.
        /// </summary>
        internal static IEnumerable<Item> Read(Stream stream, int maxLineBytes)
        {
            var current = new MemoryStream();
            byte[] buffer = new byte[1 << 16];
            long lineNo = 1;
            long overLength = -1; // >= 0 while skipping an over-long line: its length so far
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                int start = 0;
                while (start < n)
                {
                    int nl = Array.IndexOf(buffer, (byte)'\n', start, n - start);
                    int end = nl < 0 ? n : nl;
                    int length = end - start;
                    if (overLength >= 0)
                    {
                        overLength += length;
                    }
                    else if (current.Length + length > maxLineBytes)
                    {
                        overLength = current.Length + length;
                        current.SetLength(0);
                    }
                    else
                    {
                        current.Write(buffer, start, length);
                    }

                    if (nl < 0)
                    {
                        break;
                    }

                    var item = Finish(lineNo++, current, ref overLength, maxLineBytes);
                    if (item.HasValue)
                    {
                        yield return item.Value;
                    }

                    start = nl + 1;
                }
            }

            var last = Finish(lineNo, current, ref overLength, maxLineBytes);
            if (last.HasValue)
            {
                yield return last.Value;
            }
        }

        private static Item? Finish(long lineNo, MemoryStream current, ref long overLength, int maxLineBytes)
        {
            if (overLength >= 0)
            {
                long length = overLength;
                overLength = -1;
                current.SetLength(0);
                return new Item(lineNo, null, new BmadGuardException(ErrorCodes.EventTooLarge, FailureKind.InvalidInput,
                    $"The line is {length} bytes, over the limit of {maxLineBytes} bytes for a line (the store's largest event plus {LineSlackBytes / 1024} KiB); it was skipped unread."), 0);
            }

            // A UTF-8 BOM before the first line is skipped (checked here, not on the first read: a pipe may hand
            // over fewer than three bytes at a time).
            byte[] buffered = current.GetBuffer();
            int skip = lineNo == 1 && current.Length >= 3 && buffered[0] == 0xEF && buffered[1] == 0xBB && buffered[2] == 0xBF ? 3 : 0;
            if (current.Length == skip || IsWhitespace(buffered, skip, (int)current.Length))
            {
                current.SetLength(0);
                return null;
            }

            byte[] line = new byte[current.Length - skip];
            Buffer.BlockCopy(buffered, skip, line, 0, line.Length);
            current.SetLength(0);
            try
            {
                return new Item(lineNo, ParseLine(line), null, line.Length);
            }
            catch (BmadGuardException ex)
            {
                return new Item(lineNo, null, ex, 0);
            }
        }

        private static bool IsWhitespace(byte[] line, int from, int to)
        {
            for (int i = from; i < to; i++)
            {
                byte b = line[i];
                if (b != (byte)' ' && b != (byte)'\t' && b != (byte)'\r')
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>One line's event: <c>{"type","source","correlationId","data"}</c>, strictly UTF-8 and RFC 8259.</summary>
        internal static EventDraft ParseLine(byte[] line)
        {
            int length = line.Length;
            if (length > 0 && line[length - 1] == (byte)'\r')
            {
                length--;
            }

            try
            {
                new UTF8Encoding(false, true).GetCharCount(line, 0, length);
            }
            catch (DecoderFallbackException ex)
            {
                throw new BmadGuardException(ErrorCodes.InvalidUtf8, FailureKind.InvalidInput, $"The line is not valid UTF-8 (first bad byte at offset {ex.Index}).");
            }

            // Before parsing: System.Text.Json throws InvalidOperationException when it unescapes "\ud800".
            EventSerializer.ThrowIfUnpairedSurrogateEscape(new ReadOnlySpan<byte>(line, 0, length), "The line");
            JsonDocument doc;
            try
            {
                // MaxDepth 1001: data (up to 1000 levels, the largest a store allows) sits inside the line's object.
                doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(line, 0, length), new JsonDocumentOptions { MaxDepth = 1001, AllowDuplicateProperties = false });
            }
            catch (JsonException ex)
            {
                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput, "The line is not valid JSON: " + ex.Message);
            }

            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput, "Each line must be a JSON object {\"type\",\"source\",\"correlationId\",\"data\"}.");
                }

                string? type = null, source = null, correlationId = null;
                ReadOnlyMemory<byte>? data = null;
                foreach (var p in root.EnumerateObject())
                {
                    switch (p.Name)
                    {
                        case "type":
                            type = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : throw Field("type");
                            break;
                        case "source":
                            source = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()
                                : p.Value.ValueKind == JsonValueKind.Null ? null : throw Field("source");
                            break;
                        case "correlationId":
                            correlationId = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()
                                : p.Value.ValueKind == JsonValueKind.Null ? null : throw Field("correlationId");
                            break;
                        case "data":
                            data = JsonMarshal.GetRawUtf8Value(p.Value).ToArray();
                            break;
                        default:
                            throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                                $"Unknown field '{p.Name}': each line has \"type\", \"source\", \"correlationId\" and \"data\".");
                    }
                }

                if (type == null)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidEventType, FailureKind.InvalidInput, "The line has no \"type\".");
                }

                return data.HasValue ? EventDraft.FromJson(type, source, correlationId, data.Value) : EventDraft.FromJson(type, source, correlationId, (string?)null);
            }
        }

        private static BmadGuardException Field(string name)
            => new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput, $"\"{name}\" must be a string.");

        /// <summary>Bounds the bytes of lines read ahead of the writer, so a fast producer cannot fill memory.</summary>
        private sealed class ByteBudget
        {
            private readonly long _limit;
            private long _used;

            public ByteBudget(long limit) => _limit = limit;

            /// <summary>Waits until the budget has room (always admits one item when nothing is held).</summary>
            public void Take(long bytes)
            {
                lock (this)
                {
                    while (_used > 0 && _used + bytes > _limit)
                    {
                        Monitor.Wait(this);
                    }

                    _used += bytes;
                }
            }

            public void Release(long bytes)
            {
                lock (this)
                {
                    _used -= bytes;
                    Monitor.PulseAll(this);
                }
            }
        }
    }
}
