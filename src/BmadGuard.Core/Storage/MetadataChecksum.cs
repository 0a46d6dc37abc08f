using System;
using System.Globalization;
using System.Text;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// The checksum carried by the store's small JSON files (settings, consumer positions), so that
    /// Test-BmadIntegrity can tell a flipped digit from a real value: <c>"checksum":"crc32c:xxxxxxxx"</c>,
    /// the CRC-32C of the file's values joined by newlines in a fixed order (numbers as written).
    /// Readers ignore it; files written before it existed simply have none (reported as unchecked).
    /// </summary>
    internal static class MetadataChecksum
    {
        public const string PropertyName = "checksum";
        public const string Prefix = "crc32c:";

        public static string Compute(params string[] fields)
        {
            uint crc = Crc32C.Compute(Encoding.UTF8.GetBytes(string.Join("\n", fields)));
            return Prefix + crc.ToString("x8", CultureInfo.InvariantCulture);
        }

        public static string Settings(string format, string created, string segmentMaxBytes, string maxEventBytes, string maxDepth)
            => Compute("settings", format, created, segmentMaxBytes, maxEventBytes, maxDepth);

        public static string Consumer(string consumer, string seq, string updated)
            => Compute("consumer", consumer, seq, updated);
    }
}
