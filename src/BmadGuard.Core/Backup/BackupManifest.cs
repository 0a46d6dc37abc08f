using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>One file of a backup, as its manifest lists it.</summary>
    internal sealed class ManifestFile
    {
        /// <summary>Relative path with '/' separators: <c>bmadguard.store.json</c> or <c>segments/segment-….jsonl</c>.</summary>
        public string Path { get; set; } = "";
        public long Size { get; set; }
        public string Sha256 { get; set; } = "";

        /// <summary>For segments: the seq range of its records (LastSeq = FirstSeq - 1 when it has none).</summary>
        public long? FirstSeq { get; set; }
        public long? LastSeq { get; set; }

        /// <summary>For segments: true when the store had already moved on to a later segment (never appended to again).</summary>
        public bool Sealed { get; set; }

        /// <summary>The earlier backup this file was reused from (hard link or copy), if any.</summary>
        public string? ReusedFrom { get; set; }

        public bool IsSegment => Path.StartsWith(BackupLayout.SegmentsDir + "/", StringComparison.Ordinal);
    }

    /// <summary>
    /// A backup's <c>manifest.json</c>. It checks itself: its last member is <c>"manifestSha256"</c>, the
    /// SHA-256 of the manifest's bytes up to that member with a closing <c>}</c> in its place. A reader
    /// cuts the fixed 86-byte suffix <c>,"manifestSha256":"&lt;64 hex&gt;"}\n</c>, appends <c>}</c>, and
    /// compares hashes; so any change to any byte of the manifest is detected, and the damage is
    /// attributed to the manifest itself.
    /// </summary>
    internal sealed class BackupManifest
    {
        public const string Format = "bmadguard-backup/1";
        private const string HashMemberStart = ",\"manifestSha256\":\"";
        private const int SuffixLength = 19 + 64 + 2 + 1; // ,"manifestSha256":" + hex + "} + \n

        public string Name { get; set; } = "";
        public string Kind { get; set; } = "backup";
        public string StoreId { get; set; } = "";
        public string StorePath { get; set; } = "";
        public DateTimeOffset Created { get; set; }
        public DateTimeOffset ConsistentAt { get; set; }
        public long FirstSeq { get; set; } = 1;
        public long LastSeq { get; set; }
        public long EventCount { get; set; }
        public DateTimeOffset? LastTimestamp { get; set; }

        /// <summary>
        /// The store's writer epoch when the consistent point was recorded (read under the writers' lock); null in
        /// manifests written before it existed and in safety backups. Optional member <c>writerEpoch</c>: readers that do
        /// not know it ignore it. Restore and repair bump the epoch, so "same epoch, store ends below lastSeq" means
        /// events vanished rather than a deliberate rollback.
        /// </summary>
        public long? WriterEpoch { get; set; }

        public List<ManifestFile> Files { get; set; } = new List<ManifestFile>();

        public byte[] Encode()
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteString("format", Format);
                w.WriteString("name", Name);
                w.WriteString("kind", Kind);
                w.WriteString("storeId", StoreId);
                w.WriteString("storePath", StorePath);
                w.WriteString("created", Created.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
                w.WriteString("consistentAt", ConsistentAt.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
                w.WriteNumber("firstSeq", FirstSeq);
                w.WriteNumber("lastSeq", LastSeq);
                w.WriteNumber("eventCount", EventCount);
                if (WriterEpoch.HasValue)
                {
                    w.WriteNumber("writerEpoch", WriterEpoch.Value);
                }
                if (LastTimestamp.HasValue)
                {
                    w.WriteString("lastTimestamp", LastTimestamp.Value.ToString("o", CultureInfo.InvariantCulture));
                }
                else
                {
                    w.WriteNull("lastTimestamp");
                }

                w.WriteStartArray("files");
                foreach (var f in Files)
                {
                    w.WriteStartObject();
                    w.WriteString("path", f.Path);
                    w.WriteNumber("size", f.Size);
                    w.WriteString("sha256", f.Sha256);
                    if (f.FirstSeq.HasValue)
                    {
                        w.WriteNumber("firstSeq", f.FirstSeq.Value);
                        w.WriteNumber("lastSeq", f.LastSeq ?? f.FirstSeq.Value - 1);
                        w.WriteBoolean("sealed", f.Sealed);
                    }

                    if (f.ReusedFrom != null)
                    {
                        w.WriteString("reusedFrom", f.ReusedFrom);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            byte[] body = buffer.ToArray(); // ends with '}'
            string hash = Hashing.ToHex(Hashing.Sha256(body));
            var result = new MemoryStream(body.Length + SuffixLength);
            result.Write(body, 0, body.Length - 1);
            byte[] suffix = Encoding.ASCII.GetBytes(HashMemberStart + hash + "\"}\n");
            result.Write(suffix, 0, suffix.Length);
            return result.ToArray();
        }

        /// <summary>Checks the manifest's own hash and parses it. Returns null and a reason when it is damaged.</summary>
        public static BackupManifest? TryDecode(byte[] bytes, out string? problem)
        {
            problem = null;
            if (bytes.Length < SuffixLength + 2)
            {
                problem = "the manifest is too short to hold its checksum";
                return null;
            }

            int cut = bytes.Length - SuffixLength;
            string suffix = Encoding.ASCII.GetString(bytes, cut, SuffixLength);
            if (!suffix.StartsWith(HashMemberStart, StringComparison.Ordinal) || !suffix.EndsWith("\"}\n", StringComparison.Ordinal))
            {
                problem = "the manifest does not end with its \"manifestSha256\" member";
                return null;
            }

            string expected = suffix.Substring(HashMemberStart.Length, 64);
            byte[] body = new byte[cut + 1];
            Buffer.BlockCopy(bytes, 0, body, 0, cut);
            body[cut] = (byte)'}';
            string actual = Hashing.ToHex(Hashing.Sha256(body));
            if (!string.Equals(expected, actual, StringComparison.Ordinal))
            {
                problem = $"the manifest's checksum does not match its contents (recorded {expected}, computed {actual}): the manifest was changed or damaged";
                return null;
            }

            try
            {
                using var doc = JsonDocument.Parse(body);
                var r = doc.RootElement;
                if (r.GetProperty("format").GetString() != Format)
                {
                    problem = $"unsupported backup format '{r.GetProperty("format").GetString()}'";
                    return null;
                }

                var m = new BackupManifest
                {
                    Name = r.GetProperty("name").GetString()!,
                    Kind = r.GetProperty("kind").GetString()!,
                    StoreId = r.GetProperty("storeId").GetString()!,
                    StorePath = r.GetProperty("storePath").GetString()!,
                    Created = DateTimeOffset.Parse(r.GetProperty("created").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                    ConsistentAt = DateTimeOffset.Parse(r.GetProperty("consistentAt").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                    FirstSeq = r.GetProperty("firstSeq").GetInt64(),
                    LastSeq = r.GetProperty("lastSeq").GetInt64(),
                    EventCount = r.GetProperty("eventCount").GetInt64(),
                };
                if (r.TryGetProperty("writerEpoch", out var we) && we.ValueKind == JsonValueKind.Number)
                {
                    m.WriterEpoch = we.GetInt64();
                }

                var lt = r.GetProperty("lastTimestamp");
                m.LastTimestamp = lt.ValueKind == JsonValueKind.Null ? (DateTimeOffset?)null
                    : DateTimeOffset.ParseExact(lt.GetString()!, "o", CultureInfo.InvariantCulture, DateTimeStyles.None);
                foreach (var f in r.GetProperty("files").EnumerateArray())
                {
                    var mf = new ManifestFile
                    {
                        Path = f.GetProperty("path").GetString()!,
                        Size = f.GetProperty("size").GetInt64(),
                        Sha256 = f.GetProperty("sha256").GetString()!,
                    };
                    if (f.TryGetProperty("firstSeq", out var fs))
                    {
                        mf.FirstSeq = fs.GetInt64();
                        mf.LastSeq = f.GetProperty("lastSeq").GetInt64();
                        mf.Sealed = f.GetProperty("sealed").GetBoolean();
                    }

                    if (f.TryGetProperty("reusedFrom", out var rf) && rf.ValueKind == JsonValueKind.String)
                    {
                        mf.ReusedFrom = rf.GetString();
                    }

                    if (!BackupLayout.IsAllowedFilePath(mf.Path))
                    {
                        problem = $"the manifest lists a file '{mf.Path}' that a backup cannot hold";
                        return null;
                    }

                    m.Files.Add(mf);
                }

                return m;
            }
            catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
            {
                problem = "the manifest's checksum holds but its contents are not a backup manifest: " + ex.Message;
                return null;
            }
        }
    }

    /// <summary>Names and paths inside a backup destination.</summary>
    internal static class BackupLayout
    {
        public const string ManifestFileName = "manifest.json";
        public const string SegmentsDir = "segments";
        public const string DefaultDirName = "backups";
        public const string DestinationsFileName = "backup-destinations.json";
        public const string TempSuffix = ".tmp";

        // 20261122T021717123Z-1a2b3c: sortable by name = sortable by time.
        private static readonly Regex NameRegex = new Regex("^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$", RegexOptions.CultureInvariant);

        public static string NewName(DateTimeOffset utc)
            => utc.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N").Substring(0, 6);

        public static bool IsBackupName(string name) => NameRegex.IsMatch(name);

        /// <summary>Refuses names that could leave the destination, or are not backup names at all.</summary>
        public static void ValidateName(string? name)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new BmadGuardException(ErrorCodes.InvalidBackupName, FailureKind.InvalidInput, "A backup name is required.");
            }

            if (name!.IndexOf('/') >= 0 || name.IndexOf('\\') >= 0 || name.Contains(".."))
            {
                throw new BmadGuardException(ErrorCodes.InvalidBackupName, FailureKind.InvalidInput,
                    $"Backup name '{name}' is not valid: a backup name never contains '/', '\\' or '..'. Use a name from 'bmadguard backups' or Get-BmadBackup.");
            }

            if (!IsBackupName(name))
            {
                throw new BmadGuardException(ErrorCodes.InvalidBackupName, FailureKind.InvalidInput,
                    $"Backup name '{name}' is not valid: backup names look like 20261122T021717123Z-1a2b3c. Use a name from 'bmadguard backups' or Get-BmadBackup.");
            }
        }

        public static bool IsAllowedFilePath(string relative)
        {
            if (relative == StorePaths.MetaFileName)
            {
                return true;
            }

            string prefix = SegmentsDir + "/";
            return relative.StartsWith(prefix, StringComparison.Ordinal) && SegmentNames.TryParse(relative.Substring(prefix.Length), out _);
        }

        public static string ToFullPath(string backupDir, string relative) => Path.Combine(backupDir, relative.Replace('/', Path.DirectorySeparatorChar));

        public static string DefaultDestination(string storeRoot) => Path.Combine(storeRoot, DefaultDirName);

        /// <summary>A store's identity: the SHA-256 of its settings file, which is written once when it is created.</summary>
        public static string StoreId(string storeRoot)
            => Hashing.ToHex(Hashing.Sha256(File.ReadAllBytes(Path.Combine(storeRoot, StorePaths.MetaFileName)))).Substring(0, 16);
    }

    internal static class Hashing
    {
        public static byte[] Sha256(byte[] data)
        {
            using var sha = SHA256.Create();
            return sha.ComputeHash(data);
        }

        public static string ToHex(byte[] bytes)
        {
            var sb = new StringBuilder(bytes.Length * 2);
            foreach (byte b in bytes)
            {
                sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
            }

            return sb.ToString();
        }
    }
}
