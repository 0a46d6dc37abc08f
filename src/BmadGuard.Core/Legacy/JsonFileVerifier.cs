using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Integrity;
using NJsonSchema;
using NJsonSchema.Validation;

namespace BmadGuard.Core.Legacy
{
    /// <summary>What a JSON file is checked against, beyond strict RFC 8259.</summary>
    public enum JsonFileCheck
    {
        /// <summary>The legacy bus shape <c>{"events":[{"timestamp","event","data"}…]}</c> (the default).</summary>
        LegacyBus,
        /// <summary>Only that it is strict JSON (no comments, no trailing commas, no duplicate keys, valid UTF-8).</summary>
        JsonOnly,
        /// <summary>A JSON Schema given by the user (NJsonSchema).</summary>
        Schema,
    }

    public sealed class JsonFileVerifyOptions
    {
        public JsonFileCheck Check { get; set; } = JsonFileCheck.LegacyBus;

        /// <summary>The schema file, for <see cref="JsonFileCheck.Schema"/>.</summary>
        public string? SchemaPath { get; set; }
    }

    /// <summary>
    /// Test-BmadIntegrity for any JSON file: a strict parse (System.Text.Json: RFC 8259, no comments or
    /// trailing commas, duplicate keys flagged) with the line and column of the first error, then the
    /// legacy bus shape with a finding per bad event, or a user's JSON Schema (NJsonSchema).
    /// The file is read whole (legacy bus files are small; memory is the file's size).
    /// </summary>
    public static class JsonFileVerifier
    {
        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        public static IntegrityReport Verify(string path, JsonFileVerifyOptions? options = null, System.Threading.CancellationToken cancellationToken = default)
        {
            options ??= new JsonFileVerifyOptions();
            string full = LegacyFiles.RequireFile(path);
            JsonSchema? schema = null;
            if (options.SchemaPath != null || options.Check == JsonFileCheck.Schema)
            {
                schema = LoadSchema(options.SchemaPath);
            }

            byte[] bytes = LegacyFiles.ReadGuarded(full, out bool locked, out string? lockEvidence);
            var report = VerifyBytes(full, bytes, options.Check, schema, locked, cancellationToken, lockEvidence);
            return report;
        }

        /// <summary>Checks bytes already read (by a caller that holds the agents' lock).</summary>
        internal static IntegrityReport VerifyBytes(string full, byte[] bytes, JsonFileCheck check, JsonSchema? schema = null, bool locked = true,
            System.Threading.CancellationToken cancellationToken = default, string? lockEvidence = null)
        {
            var report = new IntegrityReportBuilder(full, "file") { Files = 1, Bytes = bytes.Length };
            if (lockEvidence != null)
            {
                report.Warning(FindingCodes.LegacyLockFileDeleted, full, LegacyLocking.Explain(full, lockEvidence)
                    + " Migrate the agents to a store (bmadguard import-legacy), or make the bus keep its lock file; until then publish-legacy refuses to write.");
            }

            if (!locked)
            {
                report.Info(FindingCodes.ReadWithoutLock, full,
                    $"'{LegacyFiles.LockPath(full)}' exists but could not be taken within {LegacyFiles.ReadLockTimeout.TotalSeconds:0} s (held, or not writable by you); the file was read without it. Writers that replace the file atomically are still read consistently.");
            }
            if (!CheckStrict(full, bytes, report, check == JsonFileCheck.LegacyBus, out int bom))
            {
                return report.Build();
            }

            if (schema != null)
            {
                CheckSchema(full, bytes, bom, schema, report);
            }
            else if (check == JsonFileCheck.LegacyBus)
            {
                CheckLegacyShape(full, bytes, bom, report, cancellationToken);
            }
            else
            {
                report.Records = 1;
            }

            return report.Build();
        }

        private static JsonSchema LoadSchema(string? schemaPath)
        {
            if (schemaPath == null)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "A schema check needs a schema file (--schema / -Schema).");
            }

            string full = LegacyFiles.RequireFile(schemaPath, "schema file");
            try
            {
                string text = File.ReadAllText(full, StrictUtf8);
                // Strict first: a schema with comments or duplicate keys is a mistake worth naming.
                using (JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false }))
                {
                }

                return JsonSchema.FromJsonAsync(text, full).GetAwaiter().GetResult();
            }
            catch (Exception ex) when (!(ex is BmadGuardException) && !(ex is OutOfMemoryException))
            {
                throw new BmadGuardException(ErrorCodes.InvalidSchema, FailureKind.InvalidInput,
                    $"The schema file '{full}' is not a usable JSON Schema: {ex.Message}", full, inner: ex);
            }
        }

        /// <summary>UTF-8, RFC 8259 and duplicate keys. False when the file is not JSON at all (no further checks make sense).</summary>
        private static bool CheckStrict(string file, byte[] bytes, IntegrityReportBuilder report, bool legacyBus, out int bom)
        {
            bom = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            if (bom > 0)
            {
                // The agents read the bus with Python's json.load, which fails on a BOM: damage for a bus file.
                report.Add(new IntegrityFinding(legacyBus ? FindingSeverity.Error : FindingSeverity.Warning, FindingCodes.Utf8Bom, file,
                    "The file starts with a UTF-8 byte order mark; RFC 8259 says JSON text must not. Python's json.load fails on it"
                    + (legacyBus ? "; 'bmadguard repair --file' rewrites the file without it." : " (unless opened with encoding='utf-8-sig')."), 0, 3, 1, 1));
            }

            if (bytes.Length - bom == 0)
            {
                report.Error(FindingCodes.EmptyFile, file, "The file is empty: it holds no JSON at all. If it is a legacy bus file, restore a generation from .bmadguard-generations/ or run repair.", 0);
                return false;
            }

            try
            {
                StrictUtf8.GetCharCount(bytes, bom, bytes.Length - bom);
            }
            catch (DecoderFallbackException ex)
            {
                long at = bom + Math.Max(0, ex.Index);
                var (line, col) = TextPosition.FromOffset(bytes, at);
                report.Error(FindingCodes.InvalidUtf8, file, $"The file is not valid UTF-8 at line {line}, column {col} (byte {at}).", at, null, line, col);
                return false;
            }

            var span = new ReadOnlySpan<byte>(bytes, bom, bytes.Length - bom);
            var reader = new Utf8JsonReader(span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 1000 });
            var keys = new Stack<HashSet<string>?>();
            int duplicates = 0;
            try
            {
                while (reader.Read())
                {
                    switch (reader.TokenType)
                    {
                        case JsonTokenType.StartObject:
                            keys.Push(new HashSet<string>(StringComparer.Ordinal));
                            break;
                        case JsonTokenType.StartArray:
                            keys.Push(null);
                            break;
                        case JsonTokenType.EndObject:
                        case JsonTokenType.EndArray:
                            keys.Pop();
                            break;
                        case JsonTokenType.PropertyName:
                            string name;
                            try
                            {
                                name = reader.GetString()!;
                            }
                            catch (InvalidOperationException)
                            {
                                // A key Python loads but .NET cannot decode (a lone surrogate escape): compare its raw bytes.
                                name = "\u0000raw:" + Convert.ToBase64String(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan.ToArray());
                            }

                            if (!keys.Peek()!.Add(name) && duplicates++ < 100)
                            {
                                long at = bom + reader.TokenStartIndex;
                                var (line, col) = TextPosition.FromOffset(bytes, at);
                                report.Error(FindingCodes.DuplicateKey, file,
                                    $"Duplicate key \"{name}\" at line {line}, column {col}: readers disagree on which value wins (Python keeps the last, others the first). Remove one of them.", at, null, line, col);
                            }

                            break;
                    }
                }
            }
            catch (JsonException ex)
            {
                long at = bom + TextPosition.ToOffset(span, ex.LineNumber ?? 0, ex.BytePositionInLine ?? 0);
                var (line, col) = TextPosition.FromOffset(bytes, at);
                bool truncated = at >= bytes.Length;
                report.Error(FindingCodes.InvalidJson, file,
                    (truncated ? $"The JSON ends too early (truncated) at line {line}, column {col} (byte {at}). " : $"Invalid JSON at line {line}, column {col} (byte {at}): {Clean(ex.Message)} ")
                    + "If it is a legacy bus file, 'bmadguard repair --file' salvages every complete event.", at, null, line, col);
                return false;
            }

            return true;
        }

        private static string Clean(string message)
        {
            int cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            return cut > 0 ? message.Substring(0, cut) : message;
        }

        private static void CheckLegacyShape(string file, byte[] bytes, int bom, IntegrityReportBuilder report, System.Threading.CancellationToken cancellationToken)
        {
            var span = new ReadOnlyMemory<byte>(bytes, bom, bytes.Length - bom);
            using var doc = JsonDocument.Parse(span, new JsonDocumentOptions { AllowDuplicateProperties = true, MaxDepth = 1000 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                report.Error(FindingCodes.LegacyShape, file, $"The top-level value is {Kind(root)}, not an object: a legacy bus file is {{\"events\": [...]}}.", bom, null, 1, 1);
                return;
            }

            if (!root.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Array)
            {
                report.Error(FindingCodes.LegacyShape, file, "There is no \"events\" array at the top level: a legacy bus file is {\"events\": [...]}.", bom, null, 1, 1);
                return;
            }

            foreach (var p in root.EnumerateObject())
            {
                if (p.Name != "events")
                {
                    report.Info(FindingCodes.LegacyExtraProperty, file, $"Top-level property \"{p.Name}\" is not part of the legacy bus shape; BmadGuard leaves it alone when publishing, and does not import it.");
                }
            }

            // Element offsets, for line/column per event (one pass: the cursor only moves forward).
            var offsets = LegacyScanner.ElementOffsets(bytes, bom);
            var cursor = new TextCursor(bytes);
            int index = 0;
            foreach (var e in events.EnumerateArray())
            {
                if ((index & 1023) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                long at = index < offsets.Count ? offsets[index] : bom;
                string? problem;
                bool dataNotObject;
                string? incomplete = null;
                try
                {
                    problem = LegacyEvent.Problem(e, out dataNotObject);
                    if (!LegacyScanner.StringsDecode(e))
                    {
                        problem = "holds a string that is not valid Unicode (a lone surrogate escape such as \\ud800): repair moves it to quarantine with the original";
                    }
                    else if (problem != null && e.ValueKind == JsonValueKind.Object)
                    {
                        // The agents wrote it and their bus returns it: not damage, but not a whole event either.
                        incomplete = problem;
                        problem = null;
                    }
                }
                catch (InvalidOperationException ex)
                {
                    // A string Python loads but .NET cannot decode (a lone surrogate escape such as \ud800).
                    problem = $"holds a string that is not valid Unicode ({ex.Message})";
                    dataNotObject = false;
                }

                if (problem != null)
                {
                    var (line, col) = cursor.At(at);
                    report.Error(FindingCodes.LegacyEventInvalid, file, $"Event #{index} (line {line}, column {col}) {problem}.", at, null, line, col);
                }
                else if (incomplete != null)
                {
                    var (line, col) = cursor.At(at);
                    report.Warning(FindingCodes.LegacyEventIncomplete, file,
                        $"Event #{index} (line {line}, column {col}) {incomplete}. The agents' bus returns it as it is; repair keeps it, and an import stores it as type '{LegacyEvent.UntypedType}' when it has no usable \"event\".", at, null, line, col);
                }
                else if (dataNotObject)
                {
                    var (line, col) = cursor.At(at);
                    report.Warning(FindingCodes.LegacyDataNotObject, file,
                        $"Event #{index} (line {line}, column {col}) has data that is {Kind(e.GetProperty("data"))}, not an object; an import wraps it as {{\"value\": …}}.", at, null, line, col);
                }

                index++;
            }

            report.Records = index;
        }

        internal static string Kind(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Null => "null",
            _ => "nothing",
        };

        private static void CheckSchema(string file, byte[] bytes, int bom, JsonSchema schema, IntegrityReportBuilder report)
        {
            string text = StrictUtf8.GetString(bytes, bom, bytes.Length - bom);
            ICollection<ValidationError> errors = schema.Validate(text);
            report.Records = 1;
            foreach (var error in Flatten(errors).Take(1000))
            {
                int? line = error.HasLineInfo ? error.LineNumber : (int?)null;
                int? col = error.HasLineInfo ? error.LinePosition : (int?)null;
                string path = string.IsNullOrEmpty(error.Path) ? "#" : error.Path!;
                report.Error(FindingCodes.SchemaViolation, file,
                    $"{path}{(line.HasValue ? $" (line {line}, column {col})" : "")}: {Describe(error)}.", null, null, line, col);
            }
        }

        private static IEnumerable<ValidationError> Flatten(IEnumerable<ValidationError> errors)
        {
            foreach (var e in errors)
            {
                if (e is ChildSchemaValidationError child && child.Errors.Count > 0)
                {
                    yield return e;
                    foreach (var inner in child.Errors.Values.SelectMany(v => Flatten(v)))
                    {
                        yield return inner;
                    }
                }
                else
                {
                    yield return e;
                }
            }
        }

        private static string Describe(ValidationError e)
        {
            string kind = e.Kind.ToString();
            var sb = new StringBuilder();
            foreach (char c in kind)
            {
                if (char.IsUpper(c) && sb.Length > 0)
                {
                    sb.Append(' ');
                }

                sb.Append(char.ToLowerInvariant(c));
            }

            return e.Property != null ? $"{sb} (property \"{e.Property}\")" : sb.ToString();
        }
    }
}
