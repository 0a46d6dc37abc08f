using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// A segment's first line: <c>{"segment":{"format":"bmadguard-segment/1","firstSeq":N,"created":"…"},"crc":"…"}</c>.
    /// Segments are created whole (header written to a temporary name, fsynced, renamed, directory fsynced),
    /// so a header is never torn.
    /// </summary>
    internal static class SegmentHeader
    {
        public const string Format = "bmadguard-segment/1";
        public static readonly byte[] Prefix = Encoding.ASCII.GetBytes("{\"segment\":");

        public static byte[] Encode(long firstSeq, DateTimeOffset created)
        {
            var buffer = new MemoryStream(128);
            using (var writer = new Utf8JsonWriter(buffer, Events.EventSerializer.WriterOptions))
            {
                writer.WriteStartObject();
                writer.WriteStartObject("segment");
                writer.WriteString("format", Format);
                writer.WriteNumber("firstSeq", firstSeq);
                writer.WriteString("created", created.ToString("o", CultureInfo.InvariantCulture));
                writer.WriteEndObject();
                writer.Flush();
            }

            RecordCodec.AppendTrailer(buffer, 0);
            return buffer.ToArray();
        }

        /// <summary>Parses a checked header line; returns its firstSeq, or -1 when it is not a valid header.</summary>
        public static long ParseFirstSeq(ReadOnlySpan<byte> line)
        {
            if (!RecordCodec.IsHeader(line) || !RecordCodec.ChecksumOk(line))
            {
                return -1;
            }

            try
            {
                using var doc = JsonDocument.Parse(RecordCodec.EventBytes(line));
                var seg = doc.RootElement.GetProperty("segment");
                if (seg.GetProperty("format").GetString() != Format)
                {
                    return -1;
                }

                return seg.GetProperty("firstSeq").GetInt64();
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
            {
                return -1;
            }
        }
    }

    /// <summary>Segment file names: <c>segment-&lt;firstSeq, 20 digits&gt;.jsonl</c>, so name order is seq order.</summary>
    internal static class SegmentNames
    {
        public const string Prefix = "segment-";
        public const string Extension = ".jsonl";

        public static string For(long firstSeq) => Prefix + firstSeq.ToString("D20", CultureInfo.InvariantCulture) + Extension;

        public static bool TryParse(string fileName, out long firstSeq)
        {
            firstSeq = 0;
            if (!fileName.StartsWith(Prefix, StringComparison.Ordinal) || !fileName.EndsWith(Extension, StringComparison.Ordinal)
                || fileName.Length != Prefix.Length + 20 + Extension.Length)
            {
                return false;
            }

            return long.TryParse(fileName.Substring(Prefix.Length, 20), NumberStyles.None, CultureInfo.InvariantCulture, out firstSeq);
        }

        /// <summary>The store's segments in seq order (temporary files and strangers are ignored).</summary>
        public static List<(long FirstSeq, string Path)> List(string segmentsDir)
        {
            var result = new List<(long, string)>();
            foreach (string path in Directory.EnumerateFiles(segmentsDir))
            {
                if (TryParse(System.IO.Path.GetFileName(path), out long first))
                {
                    result.Add((first, path));
                }
            }

            result.Sort((a, b) => a.Item1.CompareTo(b.Item1));
            return result;
        }
    }

    /// <summary>One line of a segment, as read forward.</summary>
    internal readonly struct SegmentLine
    {
        public SegmentLine(long offset, byte[] buffer, int start, int length, bool terminated)
        {
            Offset = offset;
            Buffer = buffer;
            Start = start;
            Length = length;
            Terminated = terminated;
        }

        /// <summary>Byte offset of the line's first byte in the file.</summary>
        public long Offset { get; }

        public byte[] Buffer { get; }

        public int Start { get; }

        public int Length { get; }

        /// <summary>False for a last line with no newline (incomplete, or still being written).</summary>
        public bool Terminated { get; }

        public ReadOnlySpan<byte> Span => new ReadOnlySpan<byte>(Buffer, Start, Length);

        /// <summary>Offset just past the line's newline.</summary>
        public long End => Offset + Length + (Terminated ? 1 : 0);
    }

    /// <summary>Reads a file's lines forward from an offset, in large blocks; bounded memory (one block plus one line).</summary>
    internal static class SegmentReader
    {
        public static IEnumerable<SegmentLine> ReadLines(string path, long fromOffset, long toOffset = long.MaxValue)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            long limit = Math.Min(toOffset, stream.Length);
            stream.Position = fromOffset;
            byte[] buffer = new byte[1 << 20];
            int filled = 0; // bytes in buffer[0..filled)
            long bufferOffset = fromOffset; // file offset of buffer[0]
            bool eof = false;
            while (true)
            {
                if (!eof && filled < buffer.Length)
                {
                    int want = (int)Math.Min(buffer.Length - filled, limit - (bufferOffset + filled));
                    int n = want <= 0 ? 0 : stream.Read(buffer, filled, want);
                    if (n == 0)
                    {
                        eof = true;
                    }

                    filled += n;
                }

                int start = 0;
                while (true)
                {
                    int nl = Array.IndexOf(buffer, (byte)'\n', start, filled - start);
                    if (nl < 0)
                    {
                        break;
                    }

                    yield return new SegmentLine(bufferOffset + start, buffer, start, nl - start, true);
                    start = nl + 1;
                }

                if (eof)
                {
                    if (start < filled)
                    {
                        yield return new SegmentLine(bufferOffset + start, buffer, start, filled - start, false);
                    }

                    yield break;
                }

                // Keep the partial line; grow the buffer when one line fills it.
                if (start == 0 && filled == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }
                else if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                    filled -= start;
                    bufferOffset += start;
                }
            }
        }

        /// <summary>Reads and checks the header line; returns firstSeq and the offset where records start.</summary>
        public static (long FirstSeq, long RecordsStart) ReadHeader(string path)
        {
            foreach (var line in ReadLines(path, 0, 4096))
            {
                long first = line.Terminated ? SegmentHeader.ParseFirstSeq(line.Span) : -1;
                if (first < 1)
                {
                    throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                        $"Segment '{path}' has a damaged or missing header at byte 0.", path, 0);
                }

                return (first, line.End);
            }

            throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                $"Segment '{path}' is empty: its header is missing at byte 0.", path, 0);
        }
    }

    /// <summary>Where a segment's valid records end, found by reading back from the end of the file.</summary>
    internal sealed class SegmentTail
    {
        public SegmentTail(long firstSeq, long recordsStart, long validEnd, long fileLength, long lastSeq, DateTimeOffset? lastTimestamp)
        {
            FirstSeq = firstSeq;
            RecordsStart = recordsStart;
            ValidEnd = validEnd;
            FileLength = fileLength;
            LastSeq = lastSeq;
            LastTimestamp = lastTimestamp;
        }

        public long FirstSeq { get; }
        public long RecordsStart { get; }

        /// <summary>Offset just past the last complete, checksummed record (or the header).</summary>
        public long ValidEnd { get; }

        public long FileLength { get; }

        /// <summary>Seq of the last valid record; FirstSeq - 1 when the segment has none.</summary>
        public long LastSeq { get; }

        public DateTimeOffset? LastTimestamp { get; }

        /// <summary>Bytes after the last valid record: a torn tail left by a crash, unless <see cref="DamagedRecords"/> &gt; 0.</summary>
        public long TornBytes => FileLength - ValidEnd;

        /// <summary>
        /// How many lines after the last valid record still have a whole record's shape (see
        /// <see cref="RecordCodec.HasRecordShape"/>): complete records whose bytes changed. Not a torn tail: damage.
        /// </summary>
        public int DamagedRecords { get; private set; }

        /// <summary>Where the first of <see cref="DamagedRecords"/> starts (-1 when there is none).</summary>
        public long FirstDamagedRecordOffset { get; private set; } = -1;

        private SegmentTail WithDamagedRecords(string path)
        {
            if (TornBytes == 0)
            {
                return this;
            }

            foreach (var line in SegmentReader.ReadLines(path, ValidEnd, FileLength))
            {
                if (line.Terminated && RecordCodec.HasRecordShape(line.Span))
                {
                    if (DamagedRecords++ == 0)
                    {
                        FirstDamagedRecordOffset = line.Offset;
                    }
                }
            }

            return this;
        }

        /// <summary>
        /// Finds the last complete record whose checksum holds. Everything after it is the torn tail: a crash
        /// mid-append leaves a prefix of the batch (an unterminated line), and a power loss can leave
        /// unsynced pages as zeros or stale bytes. A valid record is never part of the tail, by construction.
        /// </summary>
        public static SegmentTail Scan(string path)
        {
            var (firstSeq, recordsStart) = SegmentReader.ReadHeader(path);
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            long length = stream.Length;
            long window = 64 * 1024;
            while (true)
            {
                long bufStart = Math.Max(recordsStart, length - window);
                int count = (int)(length - bufStart);
                byte[] buffer = new byte[count];
                stream.Position = bufStart;
                ReadExactly(stream, buffer, count);

                // Walk lines from the end. A line's start is certain only after a '\n' in the buffer, or at recordsStart.
                int lineEnd = count; // exclusive end of the candidate line's content
                bool terminated = false;
                if (count > 0 && buffer[count - 1] == (byte)'\n')
                {
                    lineEnd = count - 1;
                    terminated = true;
                }

                while (true)
                {
                    int nl = lineEnd == 0 ? -1 : Array.LastIndexOf(buffer, (byte)'\n', lineEnd - 1, lineEnd);
                    if (nl < 0 && bufStart > recordsStart)
                    {
                        break; // this line may start before the window: read a larger one
                    }

                    int lineStart = nl + 1;
                    var span = new ReadOnlySpan<byte>(buffer, lineStart, lineEnd - lineStart);
                    if (terminated && RecordCodec.ChecksumOk(span) && !RecordCodec.IsHeader(span))
                    {
                        var record = RecordCodec.DecodeEvent(span);
                        if (record != null)
                        {
                            return new SegmentTail(firstSeq, recordsStart, bufStart + lineEnd + 1, length, record.Seq, record.Timestamp).WithDamagedRecords(path);
                        }
                    }

                    if (nl < 0)
                    {
                        return new SegmentTail(firstSeq, recordsStart, recordsStart, length, firstSeq - 1, null).WithDamagedRecords(path);
                    }

                    lineEnd = nl;
                    terminated = true;
                }

                window *= 4;
            }
        }

        private static void ReadExactly(Stream stream, byte[] buffer, int count)
        {
            int read = 0;
            while (read < count)
            {
                int n = stream.Read(buffer, read, count - read);
                if (n == 0)
                {
                    throw new EndOfStreamException();
                }

                read += n;
            }
        }
    }
}
