using System.Text;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.Store
{
    public class CrcTests
    {
        [Fact]
        public void Crc32C_matches_the_published_check_value_on_both_implementations()
        {
            byte[] check = Encoding.ASCII.GetBytes("123456789");
            Assert.Equal(0xE3069283u, Crc32C.Compute(check));
            Assert.Equal(0xE3069283u, Crc32C.ComputeWithTable(check));
        }

        [Fact]
        public void Hardware_and_table_crc_agree_on_every_length()
        {
            var rng = new System.Random(7);
            for (int len = 0; len < 300; len++)
            {
                var data = new byte[len];
                rng.NextBytes(data);
                Assert.Equal(Crc32C.ComputeWithTable(data), Crc32C.Compute(data));
            }
        }
    }
}
