using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace BmadGuard.Core.Events
{
    /// <summary>An event that passed validation and is serialized, waiting for its seq and timestamp.</summary>
    internal sealed class PreparedEvent
    {
        public PreparedEvent(string id, string type, string source, string? correlationId, byte[] tail, int dataOffset, int dataLength)
        {
            Id = id;
            Type = type;
            Source = source;
            CorrelationId = correlationId;
            Tail = tail;
            DataOffset = dataOffset;
            DataLength = dataLength;
        }

        public string Id { get; }
        public string Type { get; }
        public string Source { get; }
        public string? CorrelationId { get; }

        /// <summary><c>,"type":…,"source":…,"correlationId":…,"data":{…}</c>: everything after the timestamp.</summary>
        public byte[] Tail { get; }

        /// <summary>Where data's JSON starts in <see cref="Tail"/>.</summary>
        public int DataOffset { get; }

        public int DataLength { get; }
    }

    /// <summary>
    /// Validates events and serializes them completely in memory, before any lock is taken or byte
    /// written: the legacy bus lost 2,151 events to a serializer that failed halfway through the file.
    /// </summary>
    public static class EventSerializer
    {
        /// <summary>Types are dotted names: <c>story.created</c>, <c>workflow_failed</c>.</summary>
        public const string TypePattern = @"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$";

        /// <summary>Sources name an agent: <c>architect</c>, <c>dev-1</c>, <c>qa@host</c>.</summary>
        public const string SourcePattern = @"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$";

        /// <summary>Types under this prefix belong to BmadGuard itself (health probes).</summary>
        public const string ReservedTypePrefix = "bmadguard.";

        public const int MaxNameLength = 128;
        public const string DefaultSource = "unknown";

        /// <summary>The most bytes the store adds around <see cref="PreparedEvent.Tail"/>:
        /// <c>{"seq":&lt;19 digits&gt;,"id":"&lt;up to 128&gt;","timestamp":"&lt;33&gt;"</c> and the checksum trailer.</summary>
        internal const int MaxRecordOverhead = 10 + 19 + 7 + 128 + 16 + 33 + 1 + 18 + 1;

        private static readonly Regex TypeRegex = new Regex(TypePattern, RegexOptions.CultureInvariant);
        private static readonly Regex SourceRegex = new Regex(SourcePattern, RegexOptions.CultureInvariant);
        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        internal static readonly JsonWriterOptions WriterOptions = new JsonWriterOptions
        {
            // Keep non-ASCII text as UTF-8 so the files stay readable; no HTML is ever built from them.
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            Indented = false,
            SkipValidation = false,
            // Data may nest as deep as the store's MaxDepth (up to 1000) and sits inside the event object; the
            // writer's default of 1000 threw InvalidOperationException for data at exactly the largest limit.
            MaxDepth = Storage.RecordCodec.RecordMaxDepth,
        };

        public static void ValidateType(string? type, bool allowReserved = false)
        {
            if (string.IsNullOrEmpty(type) || type!.Length > MaxNameLength || !TypeRegex.IsMatch(type))
            {
                throw new BmadGuardException(ErrorCodes.InvalidEventType, FailureKind.InvalidInput,
                    $"Event type '{type}' is not valid: use 1 to {MaxNameLength} characters matching {TypePattern} (for example 'story.created').");
            }

            if (!allowReserved && type.StartsWith(ReservedTypePrefix, StringComparison.OrdinalIgnoreCase))
            {
                throw new BmadGuardException(ErrorCodes.ReservedEventType, FailureKind.InvalidInput,
                    $"Event type '{type}' is reserved: types starting with '{ReservedTypePrefix}' belong to BmadGuard itself.");
            }
        }

        public static void ValidateSource(string? source)
        {
            if (string.IsNullOrEmpty(source) || source!.Length > MaxNameLength || !SourceRegex.IsMatch(source))
            {
                throw new BmadGuardException(ErrorCodes.InvalidSource, FailureKind.InvalidInput,
                    $"Source '{source}' is not valid: use 1 to {MaxNameLength} characters matching {SourcePattern} (the agent's name, for example 'architect').");
            }
        }

        public static void ValidateCorrelationId(string? correlationId)
        {
            if (correlationId == null)
            {
                return;
            }

            bool ok = correlationId.Length >= 1 && correlationId.Length <= MaxNameLength;
            foreach (char c in correlationId)
            {
                ok &= c > ' ' && c < 0x7F;
            }

            if (!ok)
            {
                throw new BmadGuardException(ErrorCodes.InvalidCorrelationId, FailureKind.InvalidInput,
                    $"Correlation id '{correlationId}' is not valid: use 1 to {MaxNameLength} printable ASCII characters without spaces.");
            }
        }

        /// <summary>
        /// The draft's data as the compact JSON object the store would write, validated exactly as a publish
        /// validates it (type, source, correlation id, UTF-8, RFC 8259, object-only, depth, size). For writers that
        /// store only the data elsewhere, e.g. the guarded legacy bus publish from PowerShell objects.
        /// </summary>
        public static string DataJson(EventDraft draft, EventLimits? limits = null)
        {
            var prepared = Prepare(draft, limits ?? EventLimits.Default);
            return Encoding.UTF8.GetString(prepared.Tail, prepared.DataOffset, prepared.DataLength);
        }

        internal static PreparedEvent Prepare(EventDraft draft, EventLimits limits, bool allowReserved = false, string? id = null)
        {
            ValidateType(draft.Type, allowReserved);
            string source = string.IsNullOrEmpty(draft.Source) ? DefaultSource : draft.Source!;
            ValidateSource(source);
            ValidateCorrelationId(draft.CorrelationId);

            var buffer = new MemoryStream(256);
            int dataOffset;
            using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            {
                writer.WriteStartObject();
                writer.WriteString("type", draft.Type);
                writer.WriteString("source", source);
                if (draft.CorrelationId == null)
                {
                    writer.WriteNull("correlationId");
                }
                else
                {
                    writer.WriteString("correlationId", draft.CorrelationId);
                }

                writer.WritePropertyName("data");
                writer.Flush();
                dataOffset = (int)buffer.Length;
                if (draft.HasGraph)
                {
                    WriteGraphRoot(writer, draft.DataGraph, limits.MaxDepth);
                }
                else if (draft.DataText != null)
                {
                    WriteJsonText(writer, draft.DataText, limits.MaxDepth);
                }
                else
                {
                    WriteJsonData(writer, draft.DataUtf8!.Value, limits.MaxDepth);
                }

                writer.Flush();
            }

            int dataEnd = (int)buffer.Length;
            // The buffer holds {"type":…,"data":{…} without its closing brace yet: turn the leading '{'
            // into ',' so the tail can follow the timestamp directly.
            byte[] tail = buffer.ToArray();
            tail[0] = (byte)',';
            if (tail.Length + MaxRecordOverhead > limits.MaxEventBytes)
            {
                throw new BmadGuardException(ErrorCodes.EventTooLarge, FailureKind.InvalidInput,
                    $"Event of type '{draft.Type}' is too large: about {tail.Length + MaxRecordOverhead} bytes serialized, over the limit of {limits.MaxEventBytes} bytes.");
            }

            return new PreparedEvent(id ?? Guid.NewGuid().ToString("D"), draft.Type, source, draft.CorrelationId, tail, dataOffset, dataEnd - dataOffset);
        }

        /// <summary>
        /// JSON text given as a .NET string. Encoded strictly: a lenient encoder would turn an unpaired surrogate
        /// (which PowerShell strings and Windows command lines can hold) into U+FFFD, silently changing the data.
        /// </summary>
        private static void WriteJsonText(Utf8JsonWriter writer, string text, int maxDepth)
        {
            int bad = FindUnpairedSurrogate(text);
            if (bad >= 0)
            {
                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                    $"Event data holds an unpaired surrogate (U+{(int)text[bad]:X4}) at character {bad}: it is not a Unicode character, so it cannot be stored without altering the text.");
            }

            WriteJsonData(writer, StrictUtf8.GetBytes(text), maxDepth);
        }

        /// <summary>The index of the first unpaired UTF-16 surrogate in <paramref name="s"/>, or -1.</summary>
        public static int FindUnpairedSurrogate(string s)
        {
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    i++;
                }
                else if (char.IsSurrogate(c))
                {
                    return i;
                }
            }

            return -1;
        }

        /// <summary>
        /// The byte offset of the first <c>\uXXXX</c> escape in JSON text that names an unpaired surrogate (Python's
        /// <c>json.dumps</c> writes <c>"\ud800"</c> for such a string), or -1. RFC 8259 lets a parser do anything
        /// with one; System.Text.Json throws when it unescapes it and its writer replaces it with U+FFFD. BmadGuard
        /// refuses it before anything is written, and before parsing: the parser's duplicate-key check unescapes keys and
        /// throws on one. Malformed JSON around it is left for the parser to report.
        /// </summary>
        public static int FindUnpairedSurrogateEscape(ReadOnlySpan<byte> json)
        {
            if (json.IndexOf((byte)'\\') < 0)
            {
                return -1; // no escapes at all: the common case, found with one vectorized search
            }

            int pendingHigh = -1; // offset of a high-surrogate escape waiting for its low half
            bool inString = false;
            for (int i = 0; i < json.Length; i++)
            {
                byte b = json[i];
                if (!inString)
                {
                    inString = b == (byte)'"';
                    continue;
                }

                if (b == (byte)'"')
                {
                    if (pendingHigh >= 0)
                    {
                        return pendingHigh;
                    }

                    inString = false;
                    continue;
                }

                if (b != (byte)'\\')
                {
                    if (pendingHigh >= 0)
                    {
                        return pendingHigh;
                    }

                    continue;
                }

                // An escape: \uXXXX, or a two-byte one (\n, \", \\, ...). A malformed one is left to the parser.
                if (i + 5 >= json.Length || json[i + 1] != (byte)'u' || !IsHex(json[i + 2]) || !IsHex(json[i + 3]) || !IsHex(json[i + 4]) || !IsHex(json[i + 5]))
                {
                    if (pendingHigh >= 0)
                    {
                        return pendingHigh;
                    }

                    i++;
                    continue;
                }

                int unit = (Hex(json[i + 2]) << 12) | (Hex(json[i + 3]) << 8) | (Hex(json[i + 4]) << 4) | Hex(json[i + 5]);
                if (unit >= 0xD800 && unit <= 0xDBFF)
                {
                    if (pendingHigh >= 0)
                    {
                        return pendingHigh;
                    }

                    pendingHigh = i;
                }
                else if (unit >= 0xDC00 && unit <= 0xDFFF)
                {
                    if (pendingHigh < 0)
                    {
                        return i;
                    }

                    pendingHigh = -1;
                }
                else if (pendingHigh >= 0)
                {
                    return pendingHigh;
                }

                i += 5;
            }

            return pendingHigh;
        }

        private static bool IsHex(byte b) => (b >= (byte)'0' && b <= (byte)'9') || ((b | 0x20) >= 'a' && (b | 0x20) <= 'f');

        private static int Hex(byte b) => b <= (byte)'9' ? b - '0' : (b | 0x20) - 'a' + 10;

        /// <summary>Throws InvalidData when <paramref name="json"/> holds an unpaired surrogate escape (call it before parsing).</summary>
        public static void ThrowIfUnpairedSurrogateEscape(ReadOnlySpan<byte> json, string what)
        {
            int at = FindUnpairedSurrogateEscape(json);
            if (at >= 0)
            {
                string escape = Encoding.ASCII.GetString(json.Slice(at, 6).ToArray());
                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                    $"{what} holds an unpaired surrogate escape '{escape}' at byte {at}: it names no Unicode character, so it cannot be stored without altering the text (escape a complete pair, e.g. \\ud83d\\ude00, or send the text as UTF-8).");
            }
        }

        private static void WriteJsonData(Utf8JsonWriter writer, ReadOnlyMemory<byte> utf8, int maxDepth)
        {
            try
            {
                StrictUtf8.GetCharCount(utf8.ToArray());
            }
            catch (DecoderFallbackException ex)
            {
                throw new BmadGuardException(ErrorCodes.InvalidUtf8, FailureKind.InvalidInput,
                    $"Event data is not valid UTF-8 (first bad byte at offset {ex.Index}).", inner: ex);
            }

            ThrowIfUnpairedSurrogateEscape(utf8.Span, "Event data");
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(utf8, new JsonDocumentOptions
                {
                    MaxDepth = maxDepth,
                    AllowTrailingCommas = false,
                    CommentHandling = JsonCommentHandling.Disallow,
                    AllowDuplicateProperties = false,
                });
            }
            // Only the reader's depth limit ("The maximum configured depth of N has been exceeded"): truncated
            // input says "Expected depth to be zero at the end of the JSON payload" and is InvalidData.
            catch (JsonException ex) when (ex.Message.IndexOf("configured depth", StringComparison.OrdinalIgnoreCase) >= 0)
            {
                throw new BmadGuardException(ErrorCodes.DataTooDeep, FailureKind.InvalidInput,
                    $"Event data nests deeper than the limit of {maxDepth} levels.", inner: ex);
            }
            catch (JsonException ex)
            {
                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                    $"Event data is not valid JSON: {ex.Message}", inner: ex);
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new BmadGuardException(ErrorCodes.DataNotObject, FailureKind.InvalidInput,
                        $"Event data must be a JSON object ({{...}}), not {DescribeKind(doc.RootElement.ValueKind)}.");
                }


                doc.RootElement.WriteTo(writer);
            }
        }

        private static string DescribeKind(JsonValueKind kind)
        {
            switch (kind)
            {
                case JsonValueKind.Array: return "an array";
                case JsonValueKind.String: return "a string";
                case JsonValueKind.Number: return "a number";
                case JsonValueKind.True:
                case JsonValueKind.False: return "a boolean";
                case JsonValueKind.Null: return "null";
                default: return kind.ToString();
            }
        }

        private static void WriteGraphRoot(Utf8JsonWriter writer, object? data, int maxDepth)
        {
            if (data == null)
            {
                writer.WriteStartObject();
                writer.WriteEndObject();
                return;
            }

            if (data is string s)
            {
                // A JSON string handed in as data (PowerShell: -Data '{"a":1}').
                WriteJsonText(writer, s, maxDepth);
                return;
            }

            if (!(data is IDictionary) && !(data is JsonElement je && je.ValueKind == JsonValueKind.Object))
            {
                throw new BmadGuardException(ErrorCodes.DataNotObject, FailureKind.InvalidInput,
                    $"Event data must be a hashtable, an object with properties or a JSON object string, not {data.GetType().FullName}.");
            }

            new GraphWriter(writer, maxDepth).Write(data, "data", 1);
        }

        /// <summary>Writes dictionaries, lists and scalars as JSON with a depth limit and cycle detection.</summary>
        private sealed class GraphWriter
        {
            private readonly Utf8JsonWriter _writer;
            private readonly int _maxDepth;
            private readonly HashSet<object> _path = new HashSet<object>(ReferenceEqualityComparer.Instance);

            public GraphWriter(Utf8JsonWriter writer, int maxDepth)
            {
                _writer = writer;
                _maxDepth = maxDepth;
            }

            public void Write(object? value, string where, int depth)
            {
                switch (value)
                {
                    case null:
                        _writer.WriteNullValue();
                        return;
                    case string s:
                        _writer.WriteStringValue(Checked(s, where));
                        return;
                    case char c:
                        _writer.WriteStringValue(Checked(c.ToString(), where));
                        return;
                    case bool b:
                        _writer.WriteBooleanValue(b);
                        return;
                    case byte or sbyte or short or ushort or int or uint or long:
                        _writer.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                        return;
                    case ulong ul:
                        _writer.WriteNumberValue(ul);
                        return;
                    case float f:
                        WriteDouble(f, where);
                        return;
                    case double d:
                        WriteDouble(d, where);
                        return;
                    case decimal m:
                        _writer.WriteNumberValue(m);
                        return;
                    case DateTime dt:
                        _writer.WriteStringValue(dt.ToString("o", CultureInfo.InvariantCulture));
                        return;
                    case DateTimeOffset dto:
                        _writer.WriteStringValue(dto.ToString("o", CultureInfo.InvariantCulture));
                        return;
                    case TimeSpan ts:
                        _writer.WriteStringValue(ts.ToString("c", CultureInfo.InvariantCulture));
                        return;
                    case Guid g:
                        _writer.WriteStringValue(g.ToString("D"));
                        return;
                    case Uri u:
                        _writer.WriteStringValue(Checked(u.OriginalString, where));
                        return;
                    case Enum e:
                        _writer.WriteStringValue(e.ToString());
                        return;
                    case JsonElement je:
                        ThrowIfUnpairedSurrogateEscape(System.Text.Encoding.UTF8.GetBytes(je.GetRawText()), $"Event data at {where}");
                        je.WriteTo(_writer);
                        return;
                    case System.Numerics.BigInteger bi:
                        _writer.WriteRawValue(bi.ToString(CultureInfo.InvariantCulture));
                        return;
                }

                if (depth > _maxDepth)
                {
                    throw new BmadGuardException(ErrorCodes.DataTooDeep, FailureKind.InvalidInput,
                        $"Event data nests deeper than the limit of {_maxDepth} levels (at {where}).");
                }

                if (!_path.Add(value))
                {
                    throw new BmadGuardException(ErrorCodes.UnserializableData, FailureKind.InvalidInput,
                        $"Event data refers to itself at {where}: a cycle cannot be stored as JSON.");
                }

                try
                {
                    if (value is IDictionary dict)
                    {
                        _writer.WriteStartObject();
                        var seen = new HashSet<string>(StringComparer.Ordinal);
                        foreach (DictionaryEntry entry in dict)
                        {
                            string key = Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty;
                            if (!seen.Add(key))
                            {
                                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                                    $"Event data has the key '{key}' twice at {where}.");
                            }

                            _writer.WritePropertyName(Checked(key, where + " (a key)"));
                            Write(entry.Value, where + "." + key, depth + 1);
                        }

                        _writer.WriteEndObject();
                        return;
                    }

                    if (value is IEnumerable list)
                    {
                        _writer.WriteStartArray();
                        int i = 0;
                        foreach (object? item in list)
                        {
                            Write(item, where + "[" + i.ToString(CultureInfo.InvariantCulture) + "]", depth + 1);
                            i++;
                        }

                        _writer.WriteEndArray();
                        return;
                    }
                }
                finally
                {
                    _path.Remove(value);
                }

                throw new BmadGuardException(ErrorCodes.UnserializableData, FailureKind.InvalidInput,
                    $"Event data at {where} is a {value.GetType().FullName}, which cannot be stored as JSON: convert it to a hashtable, list, string or number first.");
            }

            /// <summary>A string as it will be stored: Utf8JsonWriter would replace an unpaired surrogate with U+FFFD.</summary>
            private static string Checked(string s, string where)
            {
                int bad = FindUnpairedSurrogate(s);
                if (bad >= 0)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput,
                        $"Event data at {where} holds an unpaired surrogate (U+{(int)s[bad]:X4}) at character {bad}: it is not a Unicode character, so it cannot be stored without altering the text.");
                }

                return s;
            }

            private void WriteDouble(double d, string where)
            {
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw new BmadGuardException(ErrorCodes.UnserializableData, FailureKind.InvalidInput,
                        $"Event data at {where} is {d.ToString(CultureInfo.InvariantCulture)}, which JSON cannot represent.");
                }

                _writer.WriteNumberValue(d);
            }
        }

        private sealed class ReferenceEqualityComparer : IEqualityComparer<object>
        {
            public static readonly ReferenceEqualityComparer Instance = new ReferenceEqualityComparer();

            public new bool Equals(object? x, object? y) => ReferenceEquals(x, y);

            public int GetHashCode(object obj) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
        }
    }
}
