// A real DNS server on loopback (dns2, UDP) for pod-identity tests: PTR, A and AAAA records from tables the test
// changes while the server runs. Queries are counted, so a test can tell a cached answer from a fresh one.
import dns2 from 'dns2'

export type DnsRecords = {
  /** Address → PTR names (the address as written, e.g. `10.0.0.7`). */
  ptr: Map<string, string[]>
  /** Name → A or AAAA addresses. */
  a: Map<string, string[]>
}

export async function startDnsServer(ttl = 30) {
  const { Packet } = dns2
  const records: DnsRecords = { ptr: new Map(), a: new Map() }
  const queries: string[] = []
  const server = dns2.createServer({
    udp: true,
    handle(request, send) {
      const response = Packet.createResponseFromRequest(request)
      const [question] = request.questions
      if (question) {
        const name = question.name.toLowerCase()
        queries.push(`${question.type === Packet.TYPE.PTR ? 'PTR' : question.type === Packet.TYPE.AAAA ? 'AAAA' : 'A'} ${name}`)
        if (question.type === Packet.TYPE.PTR) {
          const address = ptrAddress(name)
          for (const domain of (address && records.ptr.get(address)) ?? []) response.answers.push({ name: question.name, type: Packet.TYPE.PTR, class: Packet.CLASS.IN, ttl, domain })
        } else if (question.type === Packet.TYPE.A || question.type === Packet.TYPE.AAAA) {
          const v6 = question.type === Packet.TYPE.AAAA
          for (const address of records.a.get(name) ?? [])
            if (address.includes(':') === v6) response.answers.push({ name: question.name, type: question.type, class: Packet.CLASS.IN, ttl, address })
        }
      }
      send(response)
    },
  })
  await server.listen({ udp: { port: 0, address: '127.0.0.1', type: 'udp4' } })
  const port = server.addresses().udp!.port
  return {
    resolver: `127.0.0.1:${port}`,
    records,
    queries,
    /** Points `name` at `address` both ways (PTR and A). */
    set(address: string, name: string) {
      records.ptr.set(address, [name])
      records.a.set(name, [address])
    },
    close: async () => void (await server.close()),
  }
}

/** `7.0.0.10.in-addr.arpa` → `10.0.0.7`. */
function ptrAddress(name: string): string | undefined {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name)
  return v4 ? `${v4[4]}.${v4[3]}.${v4[2]}.${v4[1]}` : undefined
}
