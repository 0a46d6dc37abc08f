using System;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Events;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// The record codec: one JSON object per line, ending in a fixed 18-byte checksum trailer.
    /// <code>
    /// {"seq":7,"id":"…","timestamp":"…","type":"…","source":"…","correlationId":null,"data":{…},"crc":"1a2b3c4d"}\n
    /// └──────────────────────────── body ───────────────────────────────────────────┘└──── trailer ────┘
    /// </code>
    /// The trailer is <c>,"crc":"XXXXXXXX"}</c> with the CRC-32C of the body's bytes in 8 lowercase hex digits.
    /// The event itself (what the CLI prints) is the body followed by <c>}</c>. A reader needs no JSON
    /// parser to check a line: cut the last 18 bytes, CRC the rest, compare. docs/store-format.md has the spec.
    /// </summary>
    internal static class RecordCodec
    {
        public const int TrailerLength = 18; // ,"crc":"XXXXXXXX"}

        /// <summary>The deepest record: data at the largest allowed MaxDepth (1000) inside the event object, plus slack.</summary>
        public const int RecordMaxDepth = 1002;
        private static readonly byte[] TrailerStart = Encoding.ASCII.GetBytes(",\"crc\":\"");
        private static readonly byte[] HexDigits = Encoding.ASCII.GetBytes("0123456789abcdef");
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        /// <summary>Appends the trailer and newline for <paramref name="body"/> (already in <paramref name="buffer"/> from <paramref name="bodyStart"/>).</summary>
        public static void AppendTrailer(MemoryStream buffer, int bodyStart)
        {
            uint crc = Crc32C.Compute(new ReadOnlySpan<byte>(buffer.GetBuffer(), bodyStart, (int)buffer.Length - bodyStart));
            Span<byte> trailer = stackalloc byte[TrailerLength + 1];
            TrailerStart.AsSpan().CopyTo(trailer);
            for (int i = 0; i < 8; i++)
            {
                trailer[8 + i] = HexDigits[(int)((crc >> (28 - (4 * i))) & 0xF)];
            }

            trailer[16] = (byte)'"';
            trailer[17] = (byte)'}';
            trailer[18] = (byte)'\n';
            buffer.Write(trailer.ToArray(), 0, trailer.Length);
        }

        private static readonly byte[] SeqStart = Encoding.ASCII.GetBytes("{\"seq\":");

        /// <summary>
        /// True when a newline-terminated line (given without its newline) that fails its checksum was a whole record
        /// once: it holds no NUL byte, and either its checksum trailer is well formed, or the trailer is one byte off
        /// while the line starts with <c>{"seq":</c> digits <c>,</c> and everything before the trailer is one complete
        /// JSON object. One changed byte gets past one of those tests, a torn write past neither: a crash mid-append
        /// leaves a prefix of the batch (an unterminated line), and a power loss leaves unsynced pages as zeros or
        /// stale bytes, so a torn record keeps its start but not its end. A line like this is damage, never a torn
        /// tail to cut, and its seq must not be reused.
        /// </summary>
        public static bool HasRecordShape(ReadOnlySpan<byte> line)
        {
            if (line.Length < SeqStart.Length + 2 + TrailerLength || line.IndexOf((byte)0) >= 0)
            {
                return false;
            }

            int misfits = TrailerMisfits(line.Slice(line.Length - TrailerLength));
            return misfits == 0
                || (misfits == 1 && HasSeqStart(line) && BodyIsOneJsonObject(line.Slice(0, line.Length - TrailerLength)));
        }

        /// <summary>The record without its trailer, closed with '}', is exactly one well-formed JSON object.</summary>
        private static bool BodyIsOneJsonObject(ReadOnlySpan<byte> body)
        {
            var closed = new byte[body.Length + 1];
            body.CopyTo(closed);
            closed[body.Length] = (byte)'}';
            try
            {
                var reader = new Utf8JsonReader(closed, new JsonReaderOptions { MaxDepth = 1024 });
                while (reader.Read())
                {
                }

                return reader.BytesConsumed == closed.Length;
            }
            catch (JsonException)
            {
                return false;
            }
        }

        private static bool HasSeqStart(ReadOnlySpan<byte> line)
        {
            if (!line.StartsWith(SeqStart))
            {
                return false;
            }

            int i = SeqStart.Length;
            int digits = 0;
            while (i < line.Length && line[i] >= (byte)'0' && line[i] <= (byte)'9')
            {
                i++;
                digits++;
            }

            return digits > 0 && i < line.Length && line[i] == (byte)',';
        }

        /// <summary>How many of the trailer's 18 bytes do not fit <c>,"crc":"</c> + 8 lowercase hex digits + <c>"}</c>.</summary>
        private static int TrailerMisfits(ReadOnlySpan<byte> trailer)
        {
            int misfits = 0;
            for (int k = 0; k < 8; k++)
            {
                misfits += trailer[k] == TrailerStart[k] ? 0 : 1;
            }

            for (int h = 8; h < 16; h++)
            {
                misfits += HexDigits.AsSpan().IndexOf(trailer[h]) >= 0 ? 0 : 1;
            }

            misfits += trailer[16] == (byte)'"' ? 0 : 1;
            misfits += trailer[17] == (byte)'}' ? 0 : 1;
            return misfits;
        }

        /// <summary>True when the line (without its newline) has a well-formed trailer whose checksum matches.</summary>
        public static bool ChecksumOk(ReadOnlySpan<byte> line)
        {
            if (line.Length < TrailerLength + 2 || line[0] != (byte)'{')
            {
                return false;
            }

            var trailer = line.Slice(line.Length - TrailerLength);
            if (!trailer.Slice(0, 8).SequenceEqual(TrailerStart) || trailer[16] != (byte)'"' || trailer[17] != (byte)'}')
            {
                return false;
            }

            uint expected = 0;
            for (int i = 0; i < 8; i++)
            {
                int v = HexValue(trailer[8 + i]);
                if (v < 0)
                {
                    return false;
                }

                expected = (expected << 4) | (uint)v;
            }

            return Crc32C.Compute(line.Slice(0, line.Length - TrailerLength)) == expected;
        }

        private static int HexValue(byte b)
        {
            if (b >= (byte)'0' && b <= (byte)'9')
            {
                return b - '0';
            }

            if (b >= (byte)'a' && b <= (byte)'f')
            {
                return b - 'a' + 10;
            }

            return -1;
        }

        /// <summary>The event JSON (body + "}") of a checked line.</summary>
        public static byte[] EventBytes(ReadOnlySpan<byte> line)
        {
            var bytes = new byte[line.Length - TrailerLength + 1];
            line.Slice(0, line.Length - TrailerLength).CopyTo(bytes);
            bytes[bytes.Length - 1] = (byte)'}';
            return bytes;
        }

        /// <summary>True when a checked line is a segment header rather than an event.</summary>
        public static bool IsHeader(ReadOnlySpan<byte> line) => line.StartsWith(SegmentHeader.Prefix);

        /// <summary>Parses the event fields of a checked line; null when the JSON does not have the event shape.</summary>
        public static EventRecord? DecodeEvent(ReadOnlySpan<byte> line)
        {
            byte[] bytes = EventBytes(line);
            try
            {
                return ParseEvent(bytes);
            }
            catch (Exception ex) when (ex is JsonException || ex is FormatException || ex is InvalidOperationException || ex is DecoderFallbackException)
            {
                return null;
            }
        }

        private static EventRecord? ParseEvent(byte[] bytes)
        {
            // Deep enough for any event a store accepts: data may nest up to 1000 levels (the largest MaxDepth
            // a store can be created with) and the event object adds one. A shallower limit made a complete,
            // acknowledged record look like a torn tail, which the next open would have cut.
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = RecordMaxDepth });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            long seq = -1;
            string? id = null, type = null, source = null, correlationId = null;
            DateTimeOffset? timestamp = null;
            int dataOffset = -1, dataLength = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "seq":
                        seq = reader.GetInt64();
                        break;
                    case "id":
                        id = reader.GetString();
                        break;
                    case "timestamp":
                        timestamp = DateTimeOffset.ParseExact(reader.GetString()!, "o", CultureInfo.InvariantCulture, DateTimeStyles.None);
                        break;
                    case "type":
                        type = reader.GetString();
                        break;
                    case "source":
                        source = reader.GetString();
                        break;
                    case "correlationId":
                        correlationId = reader.TokenType == JsonTokenType.Null ? null : reader.GetString();
                        break;
                    case "data":
                        dataOffset = (int)reader.TokenStartIndex;
                        reader.Skip();
                        dataLength = (int)reader.BytesConsumed - dataOffset;
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (seq < 1 || id == null || type == null || source == null || timestamp == null || dataOffset < 0)
            {
                return null;
            }

            return new EventRecord(seq, id, timestamp.Value, type, source, correlationId, bytes, dataOffset, dataLength);
        }

        /// <summary>Reads just the seq of a checked event line (fast path for tails).</summary>
        public static long ReadSeq(ReadOnlySpan<byte> line)
        {
            var reader = new Utf8JsonReader(line.Slice(0, line.Length - TrailerLength));
            if (reader.Read() && reader.TokenType == JsonTokenType.StartObject && reader.Read()
                && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("seq") && reader.Read())
            {
                return reader.GetInt64();
            }

            return -1;
        }
    }
}
