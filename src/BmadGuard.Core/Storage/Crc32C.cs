using System;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and etcd.
    /// On net8.0+ it uses the hardware instruction through <c>System.Numerics.BitOperations.Crc32C</c>;
    /// netstandard2.0 (Windows PowerShell 5.1) uses a slicing table. Both give identical results,
    /// which the tests check against the published check value ("123456789" -> 0xE3069283).
    /// </summary>
    public static class Crc32C
    {
        private static readonly uint[] Table = BuildTable();

        private static uint[] BuildTable()
        {
            var table = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++)
                {
                    c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                }
                table[i] = c;
            }
            return table;
        }

        public static uint Compute(ReadOnlySpan<byte> data)
        {
            return ~Append(0xFFFFFFFFu, data);
        }

        /// <summary>Continues a raw (non-inverted) CRC state.</summary>
        internal static uint Append(uint state, ReadOnlySpan<byte> data)
        {
#if NET8_0_OR_GREATER
            int i = 0;
            while (i + 8 <= data.Length)
            {
                state = System.Numerics.BitOperations.Crc32C(state,
                    System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(i, 8)));
                i += 8;
            }
            for (; i < data.Length; i++)
            {
                state = System.Numerics.BitOperations.Crc32C(state, data[i]);
            }
            return state;
#else
            return AppendTable(state, data);
#endif
        }

        internal static uint ComputeWithTable(ReadOnlySpan<byte> data)
        {
            return ~AppendTable(0xFFFFFFFFu, data);
        }

        private static uint AppendTable(uint state, ReadOnlySpan<byte> data)
        {
            var t = Table;
            for (int i = 0; i < data.Length; i++)
            {
                state = t[(state ^ data[i]) & 0xFF] ^ (state >> 8);
            }
            return state;
        }
    }
}
